"""The service while its database is paused, killed, failing or slow.

These tests run against a dedicated embedded server (never the session-wide one, which other
tests share), with short deadlines so a fault is felt in about a second:
operations 1 s, readiness pings every 0.25 s with a 0.5 s deadline. Every request is sent with
a client timeout (``BUDGET_S``): a response that does not arrive within it fails the test.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from shopfront.app import create_app
from shopfront.catalog.products import upsert_products
from shopfront.extend.hookspecs import hookimpl
from shopfront.platform.embedded import EmbeddedMongo
from shopfront.platform.keys import Role, create_key
from shopfront.platform.store import Store, open_store
from shopfront.recommend.contract import Candidate, Reason, RecommenderSpec, Slot
from shopfront.shoppers.context import RequestContext
from shopfront.testing import mint_shopper_token, test_settings

from tests.waiting import eventually

pytestmark = pytest.mark.faults
log = logging.getLogger(__name__)

BUDGET_S = 4.0  # per request: two 1 s database deadlines plus ample slack on a busy machine
OUTAGE_ANSWERS = 10  # responses traffic gets while the database is down
FAULT_SETTINGS: dict[str, Any] = {
    "mongo_operation_timeout_ms": 1000,
    "mongo_server_selection_timeout_ms": 1000,
    "health_check_interval_s": 0.25,
    "health_check_timeout_s": 0.5,
    "rate_limit_enabled": False,
    "environment": "production",
    "introspection": False,
}
LIST = "query List { products(first: 5) { nodes { id } } }"
# The catalog is served from memory, so `products` keeps answering through an outage; a product
# this instance has never seen is read from the database, so this query needs it.
NEEDS_DB = 'query Unknown { product(id: "never-stored") { id } }'
UPSERT = """
mutation Upsert($p: [ProductInput!]!) { upsertProducts(input: {products: $p}) { status reason } }
"""


@pytest.fixture(scope="module")
def db_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMongo]:
    """This module's own server, on disk so it can be killed and restarted."""
    server = EmbeddedMongo(tmp_path_factory.mktemp("faultdb") / "db", test_commands=True)
    server.start()
    try:
        yield server
    finally:
        server.resume()
        server.stop()


@dataclass
class Faulty:
    server: EmbeddedMongo
    store: Store  # the test's own handle, for fail points and checks
    app: Any
    client: httpx.AsyncClient
    storefront: str
    merchant: str

    async def query(
        self,
        query: str = NEEDS_DB,
        variables: dict[str, Any] | None = None,
        *,
        key: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        resp = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"authorization": f"Bearer {key or self.storefront}"},
        )
        return resp.status_code, resp.json()

    async def ready(self) -> bool:
        return (await self.client.get("/readyz")).status_code == 200

    async def wait_ready(self) -> None:
        await eventually(self.ready, "the service turned ready again")

    async def fail_point(self, mode: Any, **data: Any) -> None:
        await self.store.client.admin.command(
            "configureFailPoint", "failCommand", mode=mode, data=data
        )

    def commands(self, name: str) -> float:
        total = 0.0
        for metric in self.app.state.metrics.registry.collect():
            for s in metric.samples:
                if (
                    s.name == "shopfront_db_command_duration_seconds_count"
                    and s.labels.get("command") == name
                ):
                    total += s.value
        return total


@asynccontextmanager
async def faulty_service(server: EmbeddedMongo, driver: str = "motor") -> AsyncIterator[Faulty]:
    settings = test_settings(server.uri, mongo_driver=driver, **FAULT_SETTINGS)
    store = await open_store(settings, settings.mongodb_uri)
    try:
        _, storefront = await create_key(store, Role.STOREFRONT, "faults-storefront")
        _, merchant = await create_key(store, Role.MERCHANT, "faults-merchant")
        app = create_app(settings)
        async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://shopfront.test", timeout=BUDGET_S
            ) as client:
                svc = Faulty(server, store, app, client, storefront, merchant)
                status, body = await svc.query(
                    UPSERT,
                    {
                        "p": [
                            {
                                "id": "p1",
                                "title": "One",
                                "price": {"amount": 100, "currency": "EUR"},
                            }
                        ]
                    },
                    key=merchant,
                )
                assert status == 200 and "errors" not in body, body
                status, body = await svc.query(LIST)  # the storefront key is now known good
                assert body == {"data": {"products": {"nodes": [{"id": "p1"}]}}}
                yield svc
    finally:
        await store.client.admin.command("configureFailPoint", "failCommand", mode="off")
        await store.drop_database()
        await store.close()


@pytest.fixture
async def faulty(db_server: EmbeddedMongo, request: pytest.FixtureRequest) -> AsyncIterator[Faulty]:
    """The app on this module's server; the driver is motor unless parametrized."""
    async with faulty_service(db_server, getattr(request, "param", "motor")) as svc:
        yield svc


BOTH_DRIVERS = pytest.mark.parametrize("faulty", ["motor", "pymongo"], indirect=True)


@dataclass
class Traffic:
    """Steady query traffic and readiness probes, recorded with timestamps."""

    svc: Faulty
    responses: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)
    probes: list[tuple[float, bool]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _queries(self) -> None:
        while not self.stop.is_set():
            status, body = await self.svc.query()  # raises if over budget
            self.responses.append((time.monotonic(), status, body))
            await asyncio.sleep(0.05)

    async def _probes(self) -> None:
        while not self.stop.is_set():
            self.probes.append((time.monotonic(), await self.svc.ready()))
            await asyncio.sleep(0.1)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Traffic]:
        tasks = [
            asyncio.create_task(self._queries()),
            asyncio.create_task(self._queries()),
            asyncio.create_task(self._probes()),
        ]
        try:
            yield self
        finally:
            self.stop.set()
            await asyncio.gather(*tasks)  # re-raises a request that missed its budget

    async def until(self, predicate: Any, what: str) -> float:
        """Wait until ``predicate(self)``; returns when it became true (monotonic time)."""
        return await eventually(lambda: bool(predicate(self)), what)

    def answered(self, after: float) -> int:
        return sum(t > after for t, _, _ in self.responses)

    def first_probe(self, after: float, ready: bool) -> float | None:
        return next((t for t, ok in self.probes if t >= after and ok is ready), None)

    def codes_between(self, start: float, end: float) -> list[str]:
        return [
            e.get("extensions", {}).get("code")
            for t, _, body in self.responses
            if start <= t <= end
            for e in body.get("errors") or []
        ]


def answered_ok_after(t0: float) -> Any:
    return lambda tr: any(
        t > t0 and "errors" not in body and body["data"] == {"product": None}
        for t, _, body in tr.responses
    )


async def test_paused_database_unready_fast_no_5xx_recovers(faulty: Faulty) -> None:
    traffic = Traffic(faulty)
    async with traffic.running():
        await traffic.until(lambda tr: tr.answered(0) >= 4, "traffic flows")
        paused_at = time.monotonic()
        faulty.server.pause()
        try:
            await traffic.until(lambda tr: tr.first_probe(paused_at, False), "unready")
            # A merchant write while the database is known down fails fast, without trying.
            writes = faulty.commands("update")
            status, body = await faulty.query(
                UPSERT,
                {"p": [{"id": "p2", "title": "Two", "price": {"amount": 1, "currency": "EUR"}}]},
                key=faulty.merchant,
            )
            assert status == 200
            assert [e["extensions"]["code"] for e in body["errors"]] == ["SERVICE_UNAVAILABLE"]
            assert faulty.commands("update") == writes
            # the outage lasts until traffic has run into it for a while
            await traffic.until(
                lambda tr: len(tr.codes_between(paused_at, time.monotonic())) >= OUTAGE_ANSWERS,
                "traffic answered during the outage",
            )
        finally:
            faulty.server.resume()
        resumed_at = time.monotonic()
        await traffic.until(lambda tr: tr.first_probe(resumed_at, True), "ready again")
        await traffic.until(answered_ok_after(resumed_at), "answered again")
    unready_at = traffic.first_probe(paused_at, False)
    ready_at = traffic.first_probe(resumed_at, True)
    assert unready_at is not None and ready_at is not None
    log.info(
        "paused: unready after %.2fs; resumed: ready after %.2fs; %d responses, %d probes",
        unready_at - paused_at,
        ready_at - resumed_at,
        len(traffic.responses),
        len(traffic.probes),
    )
    # How fast (the contract: unready within 2 s, ready within 5 s) is measured in
    # bench/outage.py; here, that it happens and what clients get meanwhile.
    assert all(status < 500 for _, status, _ in traffic.responses)
    during = traffic.codes_between(paused_at + 0.1, resumed_at)
    assert during and set(during) == {"SERVICE_UNAVAILABLE"}, set(during)
    assert (await faulty.client.get("/livez")).status_code == 200


async def test_killed_and_restarted_database_recovers(faulty: Faulty) -> None:
    server = faulty.server
    traffic = Traffic(faulty)
    async with traffic.running():
        await traffic.until(lambda tr: tr.answered(0) >= 4, "traffic flows")
        killed_at = time.monotonic()
        assert server.process is not None
        server.process.kill()
        server.process.wait()
        await traffic.until(lambda tr: tr.first_probe(killed_at, False), "unready")
        livez = await faulty.client.get("/livez")
        assert livez.status_code == 200
        await traffic.until(  # traffic against a dead database
            lambda tr: tr.answered(killed_at) >= OUTAGE_ANSWERS, "traffic during the outage"
        )
        restarted = EmbeddedMongo(server.storage, port=server.port, test_commands=True)
        # Started from this (the main) thread: the server dies with the thread that started
        # it (PR_SET_PDEATHSIG), and a worker thread of the test's loop does not outlive it.
        restarted.start()
        server.process = restarted.process  # the module fixture stops whichever runs
        back_at = time.monotonic()
        await traffic.until(lambda tr: tr.first_probe(back_at, True), "ready again")
        await traffic.until(answered_ok_after(back_at), "answered again")
    ready_at = traffic.first_probe(back_at, True)
    assert ready_at is not None
    log.info("restarted: ready after %.2fs", ready_at - back_at)
    assert all(status < 500 for _, status, _ in traffic.responses)
    assert set(traffic.codes_between(killed_at, back_at)) <= {"SERVICE_UNAVAILABLE"}


@BOTH_DRIVERS
async def test_injected_connection_errors_and_slow_reads_are_unavailable(faulty: Faulty) -> None:
    await faulty.fail_point("alwaysOn", failCommands=["find"], closeConnection=True)
    status, body = await faulty.query()
    assert status == 200 and body["data"] == {"product": None}  # nullable: the error is the field's
    assert [e["extensions"]["code"] for e in body["errors"]] == ["SERVICE_UNAVAILABLE"]
    await faulty.fail_point(
        "alwaysOn", failCommands=["find"], blockConnection=True, blockTimeMS=1500
    )
    status, body = await faulty.query()  # past the 1 s deadline, within the budget
    assert status == 200
    assert [e["extensions"]["code"] for e in body["errors"]] == ["SERVICE_UNAVAILABLE"]
    assert body["errors"][0]["extensions"]["requestId"]
    # ... while the catalog, in memory, is still served.
    status, body = await faulty.query(LIST)
    assert body == {"data": {"products": {"nodes": [{"id": "p1"}]}}}
    await faulty.fail_point("off")
    await faulty.wait_ready()
    status, body = await faulty.query()
    assert body == {"data": {"product": None}}


@BOTH_DRIVERS
async def test_injected_write_failures_fail_the_write_clearly(faulty: Faulty) -> None:
    product = {"id": "p9", "title": "Nine", "price": {"amount": 9, "currency": "EUR"}}
    # A transient server error (HostUnreachable), still there after the driver's retry.
    await faulty.fail_point("alwaysOn", failCommands=["update"], errorCode=6)
    status, body = await faulty.query(UPSERT, {"p": [product]}, key=faulty.merchant)
    assert status == 200
    assert [e["extensions"]["code"] for e in body["errors"]] == ["SERVICE_UNAVAILABLE"]
    assert "try again" in body["errors"][0]["message"]
    # A write the server holds past the deadline.
    await faulty.fail_point(
        "alwaysOn", failCommands=["update"], blockConnection=True, blockTimeMS=1500
    )
    status, body = await faulty.query(UPSERT, {"p": [product]}, key=faulty.merchant)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["SERVICE_UNAVAILABLE"]
    await faulty.fail_point("off")
    await faulty.wait_ready()
    # A command error that is not about availability is a masked internal error.
    await faulty.fail_point({"times": 1}, failCommands=["update"], errorCode=2)
    status, body = await faulty.query(UPSERT, {"p": [product]}, key=faulty.merchant)
    error = body["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["message"] == f"Internal error (request id {error['extensions']['requestId']})."
    assert "failCommand" not in str(body)
    # Once the fault is gone the same write succeeds.
    status, body = await faulty.query(UPSERT, {"p": [product]}, key=faulty.merchant)
    assert body == {"data": {"upsertProducts": [{"status": "CREATED", "reason": None}]}}


class _Picks:
    """A non-personalized recommender that needs no database: always the same two products."""

    async def recommend(self, ctx: RequestContext, slot: Slot) -> list[Candidate]:
        reason = (Reason("STAFF_PICK", "Picked by our staff"),)
        return [Candidate("p1", 1.0, reason), Candidate("p2", 0.5, reason)]


class _PicksPlugin:
    @hookimpl
    def register_recommenders(self) -> list[RecommenderSpec]:
        return [
            RecommenderSpec(
                name="picks",
                factory=lambda setup: _Picks(),
                description="Staff picks.",
                personalized=False,
            )
        ]


STOREFRONT = """
query($cart: [CartLineInput!]!) {
  storefront(input: {userId: "u1", page: HOME, cart: {lines: $cart, couponCodes: []},
                     slots: [{name: "picks", strategy: "picks", limit: 2}]}) {
    slots { name recommendationId degraded items { product { id } reasons { text } } }
    cart { total { amount } }
    degraded { strategy reason }
  }
}
"""


async def test_storefront_serves_last_known_good_while_the_database_is_paused(
    db_server: EmbeddedMongo,
) -> None:
    settings = test_settings(db_server.uri, **FAULT_SETTINGS)
    store = await open_store(settings, settings.mongodb_uri)
    try:
        _, key = await create_key(store, Role.STOREFRONT, "fallback-storefront")
        await upsert_products(
            store,
            [
                {"id": pid, "title": pid, "price": {"amount": 100, "currency": "EUR"}, "stock": 5}
                for pid in ("p1", "p2")
            ],
        )
        token = mint_shopper_token(settings, "u1")  # checked without the database
        app = create_app(settings, plugins=[("picks", _PicksPlugin())])
        async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://shopfront.test", timeout=BUDGET_S
            ) as client:

                async def storefront(cart: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
                    resp = await client.post(
                        "/graphql",
                        json={"query": STOREFRONT, "variables": {"cart": cart}},
                        headers={"authorization": f"Bearer {key}", "x-shopper-token": token},
                    )
                    return resp.status_code, resp.json()

                status, good = await storefront([])
                assert status == 200 and "errors" not in good, good
                served = good["data"]["storefront"]
                assert [i["product"]["id"] for i in served["slots"][0]["items"]] == ["p1", "p2"]
                assert served["degraded"] == [] and served["slots"][0]["degraded"] is False

                db_server.pause()
                try:

                    async def unready() -> bool:
                        return (await client.get("/readyz")).status_code != 200

                    await eventually(unready, "readyz noticed the outage")
                    status, body = await storefront([{"productId": "p1", "quantity": 1}])
                finally:
                    db_server.resume()
                assert status == 200, body
                fallback = body["data"]["storefront"]
                assert fallback["slots"][0]["items"] == served["slots"][0]["items"]
                assert fallback["slots"][0]["degraded"] is True  # a copy, not today's answer
                assert (
                    fallback["slots"][0]["recommendationId"]
                    != served["slots"][0]["recommendationId"]
                )
                assert fallback["degraded"] == [
                    {
                        "strategy": "database",
                        "reason": "database unavailable: last known good results",
                    }
                ]
                # Money fails closed: no price rather than a wrong one.
                assert fallback["cart"] is None
                assert body["errors"][0]["path"] == ["storefront", "cart"]

                async def ready() -> bool:
                    return (await client.get("/readyz")).status_code == 200

                await eventually(ready, "the service recovered")
                status, after = await storefront([])
                assert status == 200 and after["data"]["storefront"]["degraded"] == []
    finally:
        await store.drop_database()
        await store.close()
