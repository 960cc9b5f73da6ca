"""Proof that erasure holds: a shopper uses every feature through the GraphQL API (anonymous
session, events, identify, consent, preferences, storefront with an experiment, a personal
coupon validated and redeemed, an attributed click, export); every collection that then holds
their user or session id must be in the personal-data registry; after `eraseUser` no document
in any collection, and nothing in a plugin's state, names them; and the same calls afterwards
write nothing for them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from shopfront import hookimpl
from shopfront.platform.keys import Role, create_key
from shopfront.platform.personal_data import NOT_PERSONAL, PERSONAL_DATA
from shopfront.platform.store import Store
from shopfront.recommend.contract import RecommenderSpec
from shopfront.testing import (
    StorefrontClient,
    StorefrontClientFactory,
    graphql_caller,
    mint_shopper_token,
)

from tests.plugin_doubles import list_recommender
from tests.shoppers.event_helpers import walk_strings

USER = "shopper-proof-7q"
ANON_SESSION = uuid.uuid4().hex  # session ids are unguessable (128 random bits)
LOGGED_SESSION = uuid.uuid4().hex
FRESH_SESSION = uuid.uuid4().hex
IDS = (USER, ANON_SESSION, LOGGED_SESSION)

PRODUCTS = """
mutation($products: [ProductInput!]!) { upsertProducts(input: {products: $products}) { status } }
"""
TRACK = """
mutation($events: [EventInput!]!) {
  trackEvents(input: {events: $events}) { accepted rejected results { status reason } }
}
"""
IDENTIFY = "mutation($s: ID!, $u: ID!) { identify(input: {sessionId: $s, userId: $u}) { linked } }"
CONSENT = """
mutation($u: ID!) { setConsent(input: {userId: $u, personalization: true}) { personalization } }
"""
PREFS = """
mutation($u: ID!) {
  setPreferences(input: {userId: $u, preferences: {brands: ["Stride"]}}) { brands }
}
"""
STOREFRONT = """
query($input: StorefrontInput!) {
  storefront(input: $input) {
    slots { name recommendationId items { product { id } } }
    coupons { code strategy }
    experiments { experiment variant }
  }
}
"""
VALIDATE = """
query($cart: OrderCartInput!, $codes: [String!]!, $u: ID) {
  validateCoupons(cart: $cart, codes: $codes, userId: $u) { coupons { code applies reason } }
}
"""
REDEEM = """
mutation($code: String!, $u: ID!, $cart: OrderCartInput!) {
  redeemCoupon(input: {code: $code, userId: $u, orderId: "order-77", idempotencyKey: "idem-77",
                       cart: $cart}) { ok message }
}
"""
CREATE_EXPERIMENT = """
mutation($input: CreateExperimentInput!) { createExperiment(input: $input) { id } }
"""
START_EXPERIMENT = "mutation($id: ID!) { startExperiment(input: {experimentId: $id}) { status } }"
EXPORT = "query($u: ID!) { exportUserData(userId: $u) }"
ERASE = """
mutation($u: ID!) {
  eraseUser(input: {userId: $u}) { total complete failures deleted { collection count } }
}
"""
CART = {"currency": "EUR", "lines": [{"productId": "shoe", "quantity": 1}]}


class WishlistKeeper:
    """A merchant plugin with state about shoppers: the products each user or session viewed
    (from ``on_event``); it forgets (``on_user_erased``) and tells (``export_user_data``)."""

    def __init__(self) -> None:
        self.seen: dict[str, list[str]] = {}

    @hookimpl
    def register_recommenders(self) -> Sequence[RecommenderSpec]:
        return [list_recommender("keeper_picks", ["sock", "hat"])]

    @hookimpl
    def on_event(self, event: Mapping[str, Any]) -> None:
        for who in (event.get("user_id"), event.get("session_id")):
            if who and event.get("product_id"):
                self.seen.setdefault(str(who), []).append(str(event["product_id"]))

    @hookimpl
    def on_user_erased(self, user_id: str, session_ids: Sequence[str]) -> int:
        return sum(len(self.seen.pop(who, [])) for who in (user_id, *session_ids))

    @hookimpl
    def export_user_data(self, user_id: str, session_ids: Sequence[str]) -> Mapping[str, Any]:
        return {who: self.seen[who] for who in (user_id, *session_ids) if who in self.seen}


def iso(minutes_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()


def event(eid: str, kind: str = "VIEW", **fields: Any) -> dict[str, Any]:
    return {"eventId": eid, "type": kind, "timestamp": iso(1), "productId": "shoe", **fields}


async def mentions(store: Store) -> dict[str, int]:
    """Collection -> how many documents name the shopper or one of their sessions."""
    found: dict[str, int] = {}
    for name in await store.collection_names():
        async for doc in store.collection(name).find():
            if any(i in s for s in walk_strings(doc) for i in IDS):
                found[name] = found.get(name, 0) + 1
    return found


def storefront_input(session: str | None, user: str | None = USER) -> dict[str, Any]:
    return {
        "page": "HOME",
        "userId": user,
        "sessionId": session,
        "slots": [{"name": "picks", "strategy": "keeper_picks"}],
        "cart": {"lines": [{"productId": "shoe", "quantity": 1}]},
    }


def token(sf: StorefrontClient, user: str = USER, session: str | None = None) -> str:
    """The X-Shopper-Token the merchant's backend mints for a logged-in shopper."""
    return mint_shopper_token(sf.runtime.settings, user, session)


async def use_every_feature(sf: StorefrontClient, merchant: Any, storefront: Any) -> str:
    """Everything a shopper can do; returns their personal coupon code."""
    products = [
        {"id": pid, "title": pid, "price": {"amount": cents, "currency": "EUR"}, "stock": 9}
        for pid, cents in (("shoe", 6000), ("sock", 1200), ("hat", 2500))
    ]
    assert "errors" not in await merchant(PRODUCTS, {"products": products})
    experiment = {
        "name": "proof",
        "traffic": 1.0,
        "variants": [
            {"name": "control", "weight": 1, "control": True},
            {"name": "more", "weight": 1, "slots": [{"slot": "picks", "limit": 1}]},
        ],
    }
    created = await merchant(CREATE_EXPERIMENT, {"input": experiment})
    await merchant(START_EXPERIMENT, {"id": created["data"]["createExperiment"]["id"]})

    # Anonymous: a storefront and events in a session, then the shopper logs in.
    anon = await sf.query(storefront_input(ANON_SESSION, None), STOREFRONT_SELECTION)
    assert anon["experiments"], "the experiment should assign the session"
    await storefront(TRACK, {"events": [event("e1", sessionId=ANON_SESSION)]})
    identified = await storefront(
        IDENTIFY, {"s": ANON_SESSION, "u": USER}, token=token(sf, USER, ANON_SESSION)
    )
    assert identified["data"]["identify"]["linked"], identified
    assert "errors" not in await storefront(CONSENT, {"u": USER}, token=token(sf))
    logged_in = [event("e2", userId=USER, sessionId=LOGGED_SESSION)]
    res = await storefront(TRACK, {"events": logged_in}, token=token(sf))
    assert res["data"]["trackEvents"]["accepted"] == 1, res
    assert "errors" not in await storefront(PREFS, {"u": USER}, token=token(sf))

    page = await sf.query(storefront_input(LOGGED_SESSION), STOREFRONT_SELECTION)
    welcome = [c["code"] for c in page["coupons"] if c["strategy"] == "welcome"]
    assert welcome, f"a personal welcome code should be offered: {page['coupons']}"
    picks = page["slots"][0]
    click = event(
        "e3",
        "CLICK",
        userId=USER,
        sessionId=LOGGED_SESSION,
        productId=picks["items"][0]["product"]["id"],
        recommendationId=picks["recommendationId"],
    )
    await sf.composer.flush()  # attribution reads the served slot
    res = await storefront(TRACK, {"events": [click]}, token=token(sf))
    assert res["data"]["trackEvents"]["accepted"] == 1, res

    checked = await storefront(
        VALIDATE, {"cart": CART, "codes": welcome, "u": USER}, token=token(sf)
    )
    assert checked["data"]["validateCoupons"]["coupons"][0]["applies"], checked
    # Checkout: the merchant's backend redeems the code and confirms the purchase.
    redeemed = await merchant(REDEEM, {"code": welcome[0], "u": USER, "cart": CART})
    assert redeemed.get("data") and redeemed["data"]["redeemCoupon"]["ok"], redeemed
    purchase = event("e4", "PURCHASE", userId=USER, orderId="order-77", quantity=1)
    await merchant(TRACK, {"events": [purchase]})
    await sf.composer.flush()
    return welcome[0]


STOREFRONT_SELECTION = """
slots { name recommendationId items { product { id } } }
coupons { code strategy }
experiments { experiment variant }
"""


async def test_erasure_leaves_nothing_and_later_calls_write_nothing(
    storefront_client: StorefrontClientFactory, store: Store
) -> None:
    keeper = WishlistKeeper()
    sf = await storefront_client([("keeper", keeper)], builtins=True, exposure_sample_rate=1.0)
    _, merchant_key = await create_key(store, Role.MERCHANT, "proof-merchant")
    merchant = graphql_caller(sf.http, merchant_key)
    storefront = graphql_caller(sf.http, sf.key)
    code = await use_every_feature(sf, merchant, storefront)

    held = await mentions(store)
    registry = {c.name for c in PERSONAL_DATA}
    assert set(held) <= registry, f"collections holding shopper ids outside the registry: {held}"
    assert not set(held) & set(NOT_PERSONAL)
    for name in (
        "events",
        "profiles",
        "session_links",
        "consents",
        "recommendations",
        "assignments",
        "exposures",
        "attributions",
        "coupon_redemptions",
        "coupon_usage",
        "coupon_codes",
        "coupon_idempotency",
    ):
        assert held.get(name), f"the scenario should leave something in {name}: {held}"

    export = (await merchant(EXPORT, {"u": USER}))["data"]["exportUserData"]
    assert export["plugins"] == {"keeper": {k: keeper.seen[k] for k in IDS if k in keeper.seen}}
    assert export["plugins"]["keeper"][USER]
    assert sorted(export["sessions"]) == sorted([ANON_SESSION, LOGGED_SESSION])
    for name, count in held.items():
        assert len(export["collections"][name]) == count, name

    erased = (await merchant(ERASE, {"u": USER}))["data"]["eraseUser"]
    assert erased["complete"], erased
    assert await mentions(store) == {}
    assert not any(i in who for who in keeper.seen for i in IDS)

    # The same calls again: refused, or served as to an anonymous visitor, writing nothing.
    again = await sf.query(storefront_input(LOGGED_SESSION), STOREFRONT_SELECTION)
    assert again["coupons"] == [] and again["experiments"] == []
    await sf.query(storefront_input(ANON_SESSION, None), STOREFRONT_SELECTION)
    res = await storefront(TRACK, {"events": [event("e5", userId=USER)]}, token=token(sf))
    assert res["data"]["trackEvents"]["rejected"] == 1, res
    sessions_only = [event("e6", sessionId=ANON_SESSION), event("e7", sessionId=LOGGED_SESSION)]
    res = await storefront(TRACK, {"events": sessions_only})
    assert res["data"]["trackEvents"]["rejected"] == 2, res
    for query, variables, key, shopper_token in (
        (IDENTIFY, {"s": FRESH_SESSION, "u": USER}, sf.key, token(sf, USER, FRESH_SESSION)),
        (
            IDENTIFY,
            {"s": ANON_SESSION, "u": "someone-else"},
            sf.key,
            token(sf, "someone-else", ANON_SESSION),
        ),
        (CONSENT, {"u": USER}, sf.key, token(sf)),
        (PREFS, {"u": USER}, sf.key, token(sf)),
        (VALIDATE, {"cart": CART, "codes": [code], "u": USER}, sf.key, token(sf)),
        (REDEEM, {"code": code, "u": USER, "cart": CART}, merchant_key, None),
    ):
        res = await storefront(query, variables, key=key, token=shopper_token)
        assert res["errors"][0]["extensions"]["code"] == "USER_ERASED", (query, res)
    await sf.composer.flush()
    assert await mentions(store) == {}
    assert not any(i in who for who in keeper.seen for i in IDS)
