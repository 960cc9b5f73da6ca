"""Hot-path queries are targeted on a sharded cluster: with command monitoring on the app's own
database client, the storefront (a known shopper and an anonymous session), `trackEvents`,
`validateCoupons`, `redeemCoupon`, `exportUserData` and `eraseUser` run through GraphQL, and
every command on a collection `docs/scaling.md` shards must filter by that collection's shard
key (equality or ``$in``) - except the scatter-gather reads in `ALLOWED`, which the docs list
too. A query that loses its shard key fails here before it becomes a broadcast in production.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pymongo import monitoring
from shopfront.app import create_app
from shopfront.platform.config import Settings
from shopfront.platform.store import Store
from shopfront.testing import GraphQLCall, graphql_caller, mint_shopper_token

ROOT = Path(__file__).resolve().parents[2]

# collection -> the field its shard key starts with (docs/scaling.md, section 4)
SHARD_KEYS = {
    "profiles": "user_id",
    "events": "event_id",
    "session_links": "_id",
    "recommendations": "_id",
    "exposures": "user_id",
    "assignments": "user_id",
    "attributions": "user_id",
    "coupon_codes": "code",
    "coupon_redemptions": "campaign_id",
}

# (collection, command) -> why: the only operations on a sharded collection that may go to
# every shard. All are privacy requests (export, erase) that find or delete one shopper's
# documents by ``user_id``; the storefront, events and coupon calls have no exception. The
# same list is in docs/scaling.md ("Scatter-gather allowlist").
ALLOWED: dict[tuple[str, str], str] = {
    ("events", "find"): "export reads the shopper's events",
    ("events", "distinct"): "export and erase collect the shopper's session ids",
    ("events", "delete"): "erase deletes the shopper's events",
    ("session_links", "find"): "export and erase read the shopper's linked sessions",
    ("session_links", "distinct"): "export and erase collect the shopper's session ids",
    ("session_links", "delete"): "erase deletes the shopper's session links",
    ("recommendations", "find"): "export reads the slots served to the shopper",
    ("recommendations", "distinct"): "export and erase collect the shopper's session ids",
    ("recommendations", "delete"): "erase deletes the slots served to the shopper",
    ("coupon_redemptions", "find"): "export reads the shopper's redemptions",
    ("coupon_redemptions", "delete"): "erase deletes the shopper's redemptions",
    ("coupon_codes", "find"): "export reads the personal codes minted for the shopper",
    ("coupon_codes", "delete"): "erase deletes the personal codes minted for the shopper",
}
PRIVACY_FIELD = "user_id"  # what an allowed scatter filters by instead

USER = "shopper-1"
SESSION = uuid.uuid4().hex
ANON_SESSION = uuid.uuid4().hex
CODE = "SCALE10"

UPSERT_PRODUCTS = """
mutation($products: [ProductInput!]!) { upsertProducts(input: {products: $products}) { status } }
"""
CREATE_CAMPAIGN = """
mutation($input: CouponCampaignInput!) { createCouponCampaign(input: $input) { id } }
"""
STOREFRONT = """
query($input: StorefrontInput!) {
  storefront(input: $input) { requestId slots { name recommendationId items { product { id } } } }
}
"""
TRACK = """
mutation($events: [EventInput!]!) {
  trackEvents(input: {events: $events}) { accepted duplicates rejected results { reason } }
}
"""
VALIDATE = """
query($cart: OrderCartInput!, $codes: [String!]!, $userId: ID) {
  validateCoupons(cart: $cart, codes: $codes, userId: $userId) { coupons { code applies } }
}
"""
REDEEM = """
mutation($input: RedeemCouponInput!) { redeemCoupon(input: $input) { ok refusal } }
"""
EXPORT = "query($userId: ID!) { exportUserData(userId: $userId) }"
ERASE = "mutation($userId: ID!) { eraseUser(input: {userId: $userId}) { total complete } }"


class Recorder(monitoring.CommandListener):
    """Every command the app's client starts on the test database, recording on demand."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.phase: str | None = None  # None: not recording
        self.commands: list[tuple[str, str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.phase is not None and event.database_name == self.database:
            with self._lock:
                self.commands.append((self.phase, event.command_name, dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def carries(query: Any, field: str) -> bool:
    """``query`` pins ``field`` to one value or a list of values (directly or under $and)."""
    if not isinstance(query, dict):
        return False
    if field in query:
        value = query[field]
        if not isinstance(value, dict) or not any(k.startswith("$") for k in value):
            return True
        return "$eq" in value or "$in" in value
    return any(carries(part, field) for part in query.get("$and", ()))


def filters(name: str, command: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(collection, filter) for each targeting part of a command; inserts yield documents."""
    collection = command.get(name)
    if not isinstance(collection, str):
        return
    if name in ("find", "count", "distinct"):
        yield collection, command.get("filter", command.get("query", {}))
    elif name == "update":
        for update in command["updates"]:
            yield collection, update["q"]
    elif name == "delete":
        for delete in command["deletes"]:
            yield collection, delete["q"]
    elif name == "findAndModify":
        yield collection, command.get("query", {})
    elif name == "insert":
        for document in command["documents"]:
            yield collection, document
    elif name == "aggregate":
        pipeline = command.get("pipeline", [])
        yield collection, pipeline[0].get("$match", {}) if pipeline else {}


def violations(commands: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    """What does not carry its shard key, but for `ALLOWED` operations of privacy requests."""
    found = []
    for phase, name, command in commands:
        for collection, query in filters(name, command):
            field = SHARD_KEYS.get(collection)
            if field is None:
                continue
            if name == "insert" and field == "_id":
                continue  # a document without _id gets a generated one: targeted either way
            if carries(query, field):
                continue
            if (
                phase == "privacy"
                and (collection, name) in ALLOWED
                and carries(query, PRIVACY_FIELD)
            ):
                continue
            found.append(f"{phase}: {name} on {collection} without {field}: {query}")
    return found


@pytest.fixture
async def monitored(
    settings: Settings, store: Store
) -> AsyncIterator[tuple[Recorder, GraphQLCall]]:
    recorder = Recorder(settings.mongodb_database)
    application = create_app(settings, command_listeners=[recorder])
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://shopfront.test") as c:
            yield recorder, graphql_caller(c, None)


def eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


def ok(res: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in res, res
    data: dict[str, Any] = res["data"]
    return data


async def test_hot_path_operations_carry_their_shard_key(
    monitored: tuple[Recorder, GraphQLCall],
    settings: Settings,
    merchant_key: str,
    storefront_key: str,
) -> None:
    recorder, gql = monitored
    products = [
        {"id": f"p{i}", "title": f"Mug {i}", "price": eur(1000 + i), "categoryPath": ["Mugs"]}
        for i in range(4)
    ]
    ok(await gql(UPSERT_PRODUCTS, {"products": products}, key=merchant_key))
    campaign = {
        "id": "scale",
        "title": "Scale",
        "currency": "EUR",
        "discount": {"kind": "FIXED", "amount": eur(100)},
        "sharedCode": CODE,
        "perShopperLimit": 1,
    }
    ok(await gql(CREATE_CAMPAIGN, {"input": campaign}, key=merchant_key))
    token = mint_shopper_token(settings, USER, SESSION)
    now = datetime.now(UTC).isoformat()
    cart = {"currency": "EUR", "lines": [{"productId": "p1", "quantity": 2}]}

    recorder.phase = "hot path"
    # storefront: a known shopper with a token, then an anonymous session
    shopper_page = {"page": "HOME", "userId": USER, "sessionId": SESSION}
    first = ok(await gql(STOREFRONT, {"input": shopper_page}, key=storefront_key, token=token))
    ok(
        await gql(
            STOREFRONT, {"input": {"page": "HOME", "sessionId": ANON_SESSION}}, key=storefront_key
        )
    )
    rec_id = next(
        (s["recommendationId"] for s in first["storefront"]["slots"] if s["recommendationId"]),
        None,
    )
    events = [
        {"eventId": "e-view", "type": "VIEW", "timestamp": now, "productId": "p1"},
        {
            "eventId": "e-cart",
            "type": "ADD_TO_CART",
            "timestamp": now,
            "productId": "p2",
            "recommendationId": rec_id,
            "position": 1 if rec_id else None,
        },
    ]
    tracked = ok(await gql(TRACK, {"events": events}, key=storefront_key, token=token))
    assert tracked["trackEvents"]["accepted"] == 2, tracked
    anonymous = [
        {
            "eventId": "e-anon",
            "type": "VIEW",
            "timestamp": now,
            "productId": "p3",
            "sessionId": ANON_SESSION,
        }
    ]
    assert (
        ok(await gql(TRACK, {"events": anonymous}, key=storefront_key))["trackEvents"]["accepted"]
        == 1
    )
    # the shopper's next page reads the profile those events built
    ok(await gql(STOREFRONT, {"input": shopper_page}, key=storefront_key, token=token))
    checked = ok(
        await gql(
            VALIDATE,
            {"cart": cart, "codes": [CODE], "userId": USER},
            key=storefront_key,
            token=token,
        )
    )
    assert checked["validateCoupons"]["coupons"][0]["applies"] is True, checked
    redeem = {"code": CODE, "userId": USER, "orderId": "o-1", "idempotencyKey": "k-1", "cart": cart}
    assert ok(await gql(REDEEM, {"input": redeem}, key=merchant_key))["redeemCoupon"]["ok"]
    recorder.phase = "privacy"
    exported = ok(await gql(EXPORT, {"userId": USER}, key=merchant_key))
    assert exported["exportUserData"], exported
    erased = ok(await gql(ERASE, {"userId": USER}, key=merchant_key))
    assert erased["eraseUser"]["complete"] is True, erased
    recorder.phase = None

    touched = {command.get(name) for _, name, command in recorder.commands}
    # the check below must have looked at the hot collections, or it proves nothing
    assert {"profiles", "events", "coupon_codes", "coupon_redemptions"} <= touched, touched
    scattered = violations(recorder.commands)
    assert scattered == [], "\n".join(scattered)


def test_the_allowlist_is_the_documented_one() -> None:
    """docs/scaling.md lists exactly the operations this test lets scatter."""
    doc = (ROOT / "docs" / "scaling.md").read_text()
    section = doc.split("### Scatter-gather allowlist", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `(\w+)` \| `(\w+)` \|", section, flags=re.M))
    assert rows == set(ALLOWED)


def test_the_shard_keys_are_the_documented_ones() -> None:
    """The keys checked above are the ones docs/scaling.md tells operators to shard by."""
    doc = (ROOT / "docs" / "scaling.md").read_text()
    commands = re.findall(r'sh\.shardCollection\("shopfront\.(\w+)", \{(\w+):', doc)
    assert dict(commands) == SHARD_KEYS
