"""/livez, /readyz and the readiness monitor (the fault tests cover a failing database)."""

from __future__ import annotations

from typing import Any

import httpx
from shopfront.platform.health import health_of


def gauge(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


async def test_ready_and_live(client: httpx.AsyncClient) -> None:
    assert (await client.get("/livez")).json() == {"status": "ok"}
    resp = await client.get("/readyz")
    assert resp.status_code == 200 and resp.json() == {"status": "ready"}
    metrics = (await client.get("/metrics")).text
    assert gauge(metrics, "shopfront_ready") == 1
    assert gauge(metrics, "shopfront_database_up") == 1


async def test_components_add_readiness_conditions(app: Any, client: httpx.AsyncClient) -> None:
    monitor = health_of(app.state.runtime)
    assert monitor is not None
    state = {"loaded": False}
    monitor.add_check("models", lambda: None if state["loaded"] else "no model loaded yet")
    resp = await client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json() == {"status": "unready", "reasons": ["models: no model loaded yet"]}
    assert gauge((await client.get("/metrics")).text, "shopfront_ready") == 0
    assert (await client.get("/livez")).status_code == 200
    state["loaded"] = True
    assert (await client.get("/readyz")).status_code == 200
    assert gauge((await client.get("/metrics")).text, "shopfront_ready") == 1


async def test_a_broken_check_makes_unready_not_a_crash(
    app: Any, client: httpx.AsyncClient
) -> None:
    monitor = health_of(app.state.runtime)
    assert monitor is not None

    def broken() -> str | None:
        raise RuntimeError("bug")

    monitor.add_check("plugin-host", broken)
    resp = await client.get("/readyz")
    assert resp.status_code == 503
    assert "plugin-host: check failed" in resp.json()["reasons"][0]


async def test_draining_is_unready(app: Any, client: httpx.AsyncClient) -> None:
    app.state.runtime.draining = True
    resp = await client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["reasons"] == ["draining: the service is shutting down"]
    app.state.runtime.draining = False


async def test_monitor_check_once_reports_the_database(app: Any) -> None:
    monitor = health_of(app.state.runtime)
    assert monitor is not None
    assert await monitor.check_once() is True
    assert monitor.database_up and monitor.database_error is None
