"""End to end: `shopfront serve --demo` on the embedded database, as `make run` starts it.

Starts the real command twice on one data folder: the first start seeds the demo catalog and
writes the demo keys; another command (`keys list`) shares the running embedded database;
Ctrl-C (SIGINT) stops the service and its database cleanly; the second start finds the same
data and the same keys, and SIGTERM stops it cleanly too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from shopfront.cli import RUNNING_FILE
from shopfront.demo.setup import (
    DEMO_SHOPPER,
    MERCHANT_VAR,
    SHOPPER_TOKEN_VAR,
    STOREFRONT_VAR,
    read_keys_file,
)
from shopfront.platform.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]
PRODUCTS = "query { products(first: 5) { nodes { id title price { amount currency } } } }"
BY_IDS = """
query($ids: [ID!]) {
  products(filter: {ids: $ids}, first: 5) { nodes { id title price { amount currency } } }
}
"""
UPSERT = """
mutation($products: [ProductInput!]!) { upsertProducts(input: {products: $products}) { id status } }
"""
MINE = {"id": "e2e-1", "title": "End-to-end mug", "price": {"amount": 1250, "currency": "EUR"}}

pytestmark = pytest.mark.slow


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces; fields after the last ')' are fixed.
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


class Service:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFRONT_")}
        env["SHOPFRONT_DATA_DIR"] = str(data_dir)
        env["SHOPFRONT_DEMO_SHOPPERS"] = "20"  # a small history keeps this test quick
        self.env = env
        self.log = (data_dir.parent / f"serve-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shopfront.cli", "serve", "--demo", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"serve exited early: {self.output()}"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"not ready in {timeout_s}s: {self.output()}")

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def graphql(
        self,
        query: str,
        key: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> Any:
        headers = {"authorization": f"Bearer {key}"}
        if token:
            headers["x-shopper-token"] = token
        resp = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers=headers,
            timeout=10,
        )
        return resp.json()

    def printed(self, name: str) -> str:
        """The value of ``NAME=value`` as the demo printed it."""
        for line in self.output().splitlines():
            found, sep, value = line.strip().partition("=")
            if sep and found == name:
                return value
        raise AssertionError(f"{name} not printed: {self.output()}")

    def interrupt(self, sig: signal.Signals = signal.SIGINT) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(30)
        finally:
            self.log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for s in started:  # only reached with a live process when an assertion failed
        s.kill()
        for child in children(s.proc.pid):
            os.kill(child, signal.SIGKILL)


def test_serve_demo_end_to_end(tmp_path: Path, services: list[Service]) -> None:
    data = tmp_path / "data"
    first = Service(data)
    services.append(first)
    first.wait_ready()

    keys = read_keys_file(data / "demo-keys.env")
    storefront, merchant = keys[STOREFRONT_VAR], keys[MERCHANT_VAR]
    assert f"{STOREFRONT_VAR}={storefront}" in first.output()
    assert (data / "demo-keys.env").stat().st_mode & 0o077 == 0

    listed = first.graphql(PRODUCTS, storefront)
    nodes = listed["data"]["products"]["nodes"]
    assert len(nodes) == 5 and all(n["price"]["currency"] == "EUR" for n in nodes)

    created = first.graphql(UPSERT, merchant, {"products": [MINE]})
    assert created["data"]["upsertProducts"] == [{"id": "e2e-1", "status": "CREATED"}]
    refused = first.graphql(UPSERT, storefront, {"products": [MINE]})
    assert refused["data"] is None
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    # The printed shopper token lets the storefront key serve the demo shopper, only them.
    token = first.printed(SHOPPER_TOKEN_VAR)
    mine_query = "query { storefront(input: {page: HOME}) { slots { name } } }"
    served = first.graphql(mine_query, storefront, token=token)
    assert "errors" not in served and served["data"]["storefront"]["slots"], served
    other = 'query { storefront(input: {userId: "demo-0002", page: HOME}) { requestId } }'
    assert first.graphql(other, storefront, token=token)["errors"][0]["extensions"]["code"] == (
        "FORBIDDEN"
    )
    assert DEMO_SHOPPER in first.output()
    # A browser storefront on localhost may call it: the preflight is answered.
    preflight = httpx.options(
        f"{first.url}/graphql",
        headers={
            "origin": "http://localhost:5173",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type, x-shopper-token",
        },
        timeout=10,
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"

    # Other commands share the running service's embedded database instead of clashing.
    listed_keys = subprocess.run(
        [sys.executable, "-m", "shopfront.cli", "keys", "list"],
        cwd=ROOT,
        env=first.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert listed_keys.returncode == 0, listed_keys.stderr
    assert "demo-storefront" in listed_keys.stdout and "demo-merchant" in listed_keys.stdout

    [database] = children(first.proc.pid)
    assert first.interrupt() == 0, first.output()
    deadline = time.monotonic() + 5
    while alive(database) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(database), "the embedded database outlived the service"
    assert not (data / RUNNING_FILE).exists()

    second = Service(data)
    services.append(second)
    second.wait_ready()
    kept = read_keys_file(data / "demo-keys.env")
    assert kept.pop(SHOPPER_TOKEN_VAR) and keys.pop(SHOPPER_TOKEN_VAR) == token
    assert kept == keys  # the same keys and token secret; a fresh demo token each start
    # Tokens minted before the restart still verify: the demo's secret was kept.
    assert "errors" not in second.graphql(mine_query, storefront, token=token)
    again = second.graphql(BY_IDS, storefront, {"ids": [n["id"] for n in nodes]})
    assert again["data"]["products"]["nodes"] == nodes
    mine = second.graphql('query { product(id: "e2e-1") { title } }', storefront)
    assert mine == {"data": {"product": {"title": "End-to-end mug"}}}
    # `docker stop` and process managers send SIGTERM: also a clean stop.
    [database] = children(second.proc.pid)
    assert second.interrupt(signal.SIGTERM) == 0, second.output()
    assert "embedded MongoDB stopped" in second.output()
    assert not alive(database)
