"""What one storefront answer costs the database, counted with the app's own driver command
monitoring (`shopfront_db_command_duration_seconds_count`): for a known shopper, one read
(the profile) per request; the catalog, API keys, promotions, campaigns and experiments come
from memory, and what the answer records goes through the background writer in batches.
Also: a shopper's own event shows in their very next answer on the same instance."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shopfront.runtime import Runtime
from shopfront.testing import GraphQLCall
from starlette.applications import Starlette

UPSERT = "mutation($p: [ProductInput!]!) { upsertProducts(input: {products: $p}) { status } }"
TRACK = "mutation($e: [EventInput!]!) { trackEvents(input: {events: $e}) { accepted } }"
STOREFRONT = """
query($user: ID!) { storefront(input: {userId: $user, page: HOME,
  cart: {lines: [{productId: "p1", quantity: 1}], couponCodes: []}}) {
  slots { name items { product { id title price { amount currency } } reasons { code } } }
  coupons { code } cart { total { amount currency } } degraded { strategy reason } } }
"""
# Not the request path: the health monitor's pings and idle change streams' getMores.
BACKGROUND = {"ping", "getMore", "hello", "isMaster", "killCursors", "endSessions"}
WRITES = {"insert", "update", "delete"}


def commands(app: Starlette) -> dict[str, float]:
    counts: dict[str, float] = {}
    for metric in app.state.metrics.registry.collect():
        for s in metric.samples:
            if s.name == "shopfront_db_command_duration_seconds_count":
                name = s.labels["command"]
                counts[name] = counts.get(name, 0.0) + s.value
    return counts


def product(i: int) -> dict[str, Any]:
    cat = ["Shoes", "Running"] if i % 2 else ["Apparel", "Tops"]
    return {
        "id": f"p{i}",
        "title": f"Product {i}",
        "price": {"amount": 1000 + i, "currency": "EUR"},
        "stock": 5,
        "categoryPath": cat,
        "brand": "Stride",
    }


def view(i: int, user: str, pid: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "eventId": f"e-{user}-{i}",
        "type": "VIEW",
        "timestamp": now,
        "userId": user,
        "productId": pid,
    }


async def test_a_known_shoppers_answer_costs_one_read(app: Starlette, graphql: GraphQLCall) -> None:
    res = await graphql(UPSERT, {"p": [product(i) for i in range(1, 13)]})
    assert "errors" not in res, res
    res = await graphql(TRACK, {"e": [view(i, "u1", f"p{i}") for i in range(1, 6)]})
    assert res["data"]["trackEvents"]["accepted"] == 5
    first = await graphql(STOREFRONT, {"user": "u1"})
    assert "errors" not in first, first
    runtime: Runtime = app.state.runtime
    assert runtime.writer is not None
    await runtime.writer.flush()

    n = 20
    before = commands(app)
    for _ in range(n):
        body = await graphql(STOREFRONT, {"user": "u1"})
        assert "errors" not in body and body["data"]["storefront"]["degraded"] == [], body
    await runtime.writer.flush()  # the answers' records, written in batches
    after = commands(app)
    spent = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    reads = sum(v for k, v in spent.items() if k not in BACKGROUND | WRITES)
    writes = sum(v for k, v in spent.items() if k in WRITES)
    assert reads / n <= 1, spent  # the profile; nothing else is read per request
    assert writes / n < 1, spent  # served slots etc. in batches, not a write per answer
    assert spent.get("find", 0) == n, spent


async def test_a_shoppers_own_event_shows_in_their_next_answer(
    app: Starlette, graphql: GraphQLCall
) -> None:
    await graphql(UPSERT, {"p": [product(i) for i in range(1, 13)]})
    await graphql(STOREFRONT, {"user": "u2"})
    res = await graphql(TRACK, {"e": [view(1, "u2", "p7")]})
    assert res["data"]["trackEvents"]["accepted"] == 1
    body = await graphql(STOREFRONT, {"user": "u2"})
    slots = {s["name"]: s["items"] for s in body["data"]["storefront"]["slots"]}
    assert "p7" in [i["product"]["id"] for i in slots["recently_viewed"]], slots
