"""Three `shopfront serve` processes on one database, behind no balancer but the test itself:
a mixed load (storefront pages, event batches with client event ids, single-use coupon codes
each tried on every instance) runs through all three at once. Nothing is shared between the
instances but the database, so what must hold across them is MongoDB's doing:

- every single-use code is redeemed exactly once, whichever instances race for it;
- every event is stored once: a batch retried through another instance is a duplicate;
- a catalog change made through one instance is served by the other two within 2 s;
- an instance SIGKILLed mid-load loses no event whose batch it acknowledged.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient
from shopfront.platform.embedded import free_port
from shopfront.platform.keys import Role, create_key
from shopfront.platform.store import Store, deadline, open_store
from shopfront.testing import test_settings

from tests.waiting import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CODES = 8
BATCHES = 24  # per load phase
BATCH_SIZE = 10

UPSERT = """
mutation($products: [ProductInput!]!) { upsertProducts(input: {products: $products}) { status } }
"""
BY_IDS = "query($ids: [ID!]) { products(filter: {ids: $ids}, first: 5) { nodes { id title } } }"
STOREFRONT = """
query($input: StorefrontInput!) { storefront(input: $input) { requestId slots { name } } }
"""
TRACK = """
mutation($events: [EventInput!]!) {
  trackEvents(input: {events: $events}) {
    accepted duplicates rejected results { eventId status reason }
  }
}
"""
CAMPAIGN = "mutation($input: CouponCampaignInput!) { createCouponCampaign(input: $input) { id } }"
GENERATE = """
mutation($id: ID!, $count: Int!) {
  generateCouponCodes(input: {campaignId: $id, count: $count}) { generated }
}
"""
REDEEM = "mutation($input: RedeemCouponInput!) { redeemCoupon(input: $input) { ok refusal } }"


def eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


CART = {"currency": "EUR", "lines": [{"productId": "p0", "quantity": 1}]}


class Unavailable(Exception):
    """The instance did not answer (killed, refused, overloaded): try another one."""


class Instance:
    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"serve-{name}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "shopfront.cli", "serve", "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def ready(self) -> bool:
        assert self.proc.poll() is None, f"{self.name} exited: {self.log_path.read_text()}"
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def graphql(self, query: str, key: str, variables: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = httpx.post(
                f"{self.url}/graphql",
                json={"query": query, "variables": variables},
                headers={"authorization": f"Bearer {key}"},
                timeout=30,
            )
        except httpx.TransportError as exc:
            raise Unavailable(f"{self.name}: {exc!r}") from exc
        if resp.status_code in (429, 502, 503):
            raise Unavailable(f"{self.name}: HTTP {resp.status_code}")
        body: dict[str, Any] = resp.json()
        assert "errors" not in body, (self.name, body)
        data: dict[str, Any] = body["data"]
        return data

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Shop:
    """Three instances on one database, the keys, and a direct client to check the data."""

    def __init__(self, instances: list[Instance], db: Any, merchant: str, storefront: str):
        self.instances = instances
        self.db = db
        self.merchant = merchant
        self.storefront = storefront


async def _make_keys(settings: Any) -> tuple[str, str]:
    store: Store = await open_store(settings, settings.mongodb_uri)
    try:
        _, merchant = await create_key(store, Role.MERCHANT, "scale-merchant")
        _, storefront = await create_key(store, Role.STOREFRONT, "scale-storefront")
        return merchant, storefront
    finally:
        await store.close()


async def _drop(settings: Any) -> None:
    store: Store = await open_store(settings, settings.mongodb_uri)
    try:
        with deadline(60):
            await store.drop_database()
    finally:
        await store.close()


@pytest.fixture
def shop(mongo_uri: str, tmp_path: Path) -> Iterator[Shop]:
    settings = test_settings(mongo_uri)
    merchant, storefront = asyncio.run(_make_keys(settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFRONT_")}
    env |= {
        "SHOPFRONT_MONGODB_URI": mongo_uri,
        "SHOPFRONT_MONGODB_DATABASE": settings.mongodb_database,
        "SHOPFRONT_RATE_LIMIT_ENABLED": "false",  # the test is the only client
    }
    instances: list[Instance] = []
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    try:
        instances = [Instance(name, env, tmp_path) for name in "ABC"]
        for instance in instances:
            wait_until(instance.ready, f"instance {instance.name} ready", within_s=60)
        yield Shop(instances, client[settings.mongodb_database], merchant, storefront)
    finally:
        for instance in instances:
            instance.stop()
        client.close()
        asyncio.run(_drop(settings))


@functools.cache
def batch(phase: str, n: int) -> list[dict[str, Any]]:
    """Batch ``n`` of a phase: the same events (ids, session) every time it is sent."""
    now = datetime.now(UTC).isoformat()
    session = uuid.uuid4().hex  # session ids must be unguessable
    return [
        {
            "eventId": f"{phase}-{n}-{i}",
            "type": "VIEW",
            "timestamp": now,
            "sessionId": session,
            "productId": f"p{i % 4}",
        }
        for i in range(BATCH_SIZE)
    ]


class Ledger:
    """Event ids the instances acknowledged (their batch answered), counted across threads."""

    def __init__(self) -> None:
        self.acknowledged: set[str] = set()
        self.accepted = 0
        self.batches = 0
        self.failed_over = 0  # batches an instance dropped, answered by another
        self.lock = threading.Lock()

    def add(self, answer: dict[str, Any]) -> None:
        result = answer["trackEvents"]
        assert result["rejected"] == 0, result
        with self.lock:
            self.acknowledged |= {r["eventId"] for r in result["results"]}
            self.accepted += result["accepted"]
            self.batches += 1


def send(shop: Shop, ledger: Ledger, events: list[dict[str, Any]], first: int) -> None:
    """Send a batch to instance ``first``; when it does not answer, retry the same batch (same
    event ids) through the next instances, as a client behind a load balancer would."""
    order = shop.instances[first:] + shop.instances[:first]
    for tries, instance in enumerate(order):
        try:
            ledger.add(instance.graphql(TRACK, shop.storefront, {"events": events}))
        except Unavailable:
            continue
        if tries:
            with ledger.lock:
                ledger.failed_over += 1
        return
    raise AssertionError(f"no instance acknowledged batch {events[0]['eventId']}")


def stored_counts(shop: Shop, prefix: str) -> dict[str, int]:
    """Client event id -> how many stored events carry it, for ids starting with ``prefix``
    (an event is stored under its sender's scope, the client's id kept beside it)."""
    counts: dict[str, int] = {}
    for doc in shop.db["events"].find({}, {"event_id": 1, "client_event_id": 1}):
        event_id = str(doc.get("client_event_id") or doc.get("event_id", ""))
        if event_id.startswith(prefix):
            counts[event_id] = counts.get(event_id, 0) + 1
    return counts


def test_three_instances_share_one_database_correctly(shop: Shop) -> None:
    a, b, c = shop.instances
    products = [{"id": f"p{i}", "title": f"Mug {i}", "price": eur(1000 + i)} for i in range(4)]
    a.graphql(UPSERT, shop.merchant, {"products": products})
    a.graphql(
        CAMPAIGN,
        shop.merchant,
        {
            "input": {
                "id": "single",
                "title": "Single use",
                "currency": "EUR",
                "discount": {"kind": "FIXED", "amount": eur(100)},
            }
        },
    )
    b.graphql(GENERATE, shop.merchant, {"id": "single", "count": CODES})
    codes = [d["code"] for d in shop.db["coupon_codes"].find({"campaign_id": "single"})]
    assert len(codes) == CODES

    # -- phase 1: all three alive, everything at once ------------------------------------
    ledger = Ledger()
    redeemed: dict[str, list[str]] = {code: [] for code in codes}
    answered = threading.Lock()

    def redeem(code: str, instance: Instance) -> None:
        attempt = f"{code}-{instance.name}"
        answer = instance.graphql(
            REDEEM,
            shop.merchant,
            {
                "input": {
                    "code": code,
                    "userId": f"buyer-{attempt}",
                    "orderId": f"order-{attempt}",
                    "idempotencyKey": f"idem-{attempt}",
                    "cart": CART,
                }
            },
        )["redeemCoupon"]
        if answer["ok"]:
            with answered:
                redeemed[code].append(instance.name)

    def page(n: int) -> None:
        session = uuid.uuid4().hex
        answer = shop.instances[n % 3].graphql(
            STOREFRONT, shop.storefront, {"input": {"page": "HOME", "sessionId": session}}
        )
        assert answer["storefront"]["requestId"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        jobs = [pool.submit(redeem, code, i) for code in codes for i in shop.instances]
        jobs += [pool.submit(send, shop, ledger, batch("one", n), n % 3) for n in range(BATCHES)]
        jobs += [pool.submit(page, n) for n in range(BATCHES)]
        for job in jobs:
            job.result()

    assert all(len(winners) == 1 for winners in redeemed.values()), redeemed
    for code in codes:
        assert (
            shop.db["coupon_redemptions"].count_documents({"code": code, "status": "redeemed"}) == 1
        ), code
    assert shop.db["coupon_codes"].count_documents({"campaign_id": "single", "used": 1}) == CODES

    # Retrying an acknowledged batch through another instance stores nothing twice.
    again = Ledger()
    for n in range(3):
        send(shop, again, batch("one", n), (n + 1) % 3)
    assert (again.accepted, again.batches) == (0, 3)
    assert ledger.accepted == BATCHES * BATCH_SIZE
    counts = stored_counts(shop, "one-")
    assert set(counts) == ledger.acknowledged and set(counts.values()) == {1}

    # -- a catalog change through A is served by B and C within 2 s -----------------------
    a.graphql(UPSERT, shop.merchant, {"products": [{**products[0], "title": "Mug renamed"}]})

    def renamed(instance: Instance) -> bool:
        nodes = instance.graphql(BY_IDS, shop.storefront, {"ids": ["p0"]})["products"]["nodes"]
        return [n["title"] for n in nodes] == ["Mug renamed"]

    for instance in (b, c):
        wait_until(functools.partial(renamed, instance), f"{instance.name} serves it", within_s=2)

    # -- phase 2: C is SIGKILLed while batches are in flight through all three -------------
    during = Ledger()

    def kill_c() -> None:
        wait_until(lambda: during.batches >= BATCHES // 3, "a third of the batches answered")
        c.proc.send_signal(signal.SIGKILL)

    with ThreadPoolExecutor(max_workers=7) as pool:
        killer = pool.submit(kill_c)
        jobs = [pool.submit(send, shop, during, batch("two", n), n % 3) for n in range(BATCHES)]
        for job in jobs:
            job.result()
        killer.result()
    assert c.proc.wait(timeout=10) == -signal.SIGKILL
    assert during.failed_over > 0, "C was killed after its share of the load: not mid-load"

    # Every batch was answered by someone (the client retried what C dropped); every event id
    # an instance acknowledged is stored, once. An acknowledgement the driver had not made
    # durable yet would be missing here: C never comes back to write it.
    def all_stored() -> bool:
        return set(stored_counts(shop, "two-")) >= during.acknowledged

    wait_until(all_stored, "every acknowledged event stored", within_s=10)
    counts = stored_counts(shop, "two-")
    assert len(during.acknowledged) == BATCHES * BATCH_SIZE
    assert set(counts) == during.acknowledged and set(counts.values()) == {1}
