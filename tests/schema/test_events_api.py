"""Events, profiles and privacy through GraphQL, with the key each operation needs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shopfront.platform.store import USER_DATA, Store
from shopfront.testing import GraphQLCall, ShopperTokenFactory
from starlette.applications import Starlette

from tests.shoppers.event_helpers import seed_products, walk_strings

TRACK = """
mutation($events: [EventInput!]!) {
  trackEvents(input: {events: $events}) {
    accepted duplicates rejected
    results { index eventId status reason }
  }
}
"""
IDENTIFY = """
mutation($s: ID!, $u: ID!) { identify(input: {sessionId: $s, userId: $u}) { linked mergedEvents } }
"""
PREFS = """
mutation($u: ID!, $p: PreferencesInput!) {
  setPreferences(input: {userId: $u, preferences: $p}) {
    categories brands sizes priceMin { amount currency } answers { key value }
  }
}
"""
CONSENT = """
mutation($u: ID!, $on: Boolean!) {
  setConsent(input: {userId: $u, personalization: $on}) {
    userId personalization deleted { collection count }
  }
}
"""
PROFILE = """
query($u: ID!) {
  profile(userId: $u) {
    userId consentPersonalization sessions orders
    categoryAffinities { key score } brandAffinities { key score } tagAffinities { key }
    recentlyViewed notInterested cart { productId quantity } ratings { productId rating }
    purchases { productId count lastPurchasedAt } typicalPrice { amount currency }
    totalSpent { amount currency } firstSeen lastSeen lastPurchaseAt
    preferences { categories brands sizes answers { key value } }
  }
}
"""
EXPORT = "query($u: ID!) { exportUserData(userId: $u) }"
ERASE = """
mutation($u: ID!) {
  eraseUser(input: {userId: $u}) {
    userId total alreadyErased complete failures deleted { collection count }
  }
}
"""


# Anonymous sessions are unguessable ids (a storefront key's short ones are refused).
S1 = "3f0c1a52-8d7e-4b1c-9a6e-2f5d8c7b9e01"
S_ANON = "9b2e4c6d-1a3f-4e5b-8c7d-6e9f0a1b2c3d"
S9 = "c4d5e6f7-a8b9-4c0d-9e1f-2a3b4c5d6e7f"


def iso(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()


def event(eid: str, kind: str = "VIEW", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"eventId": eid, "type": kind, "timestamp": iso(1), "userId": "u1"}
    if kind != "SEARCH":
        base["productId"] = "shoe-1"
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture
async def shop(store: Store) -> Store:
    await seed_products(store)
    return store


async def test_track_events_reports_each_event(shop: Store, graphql: GraphQLCall) -> None:
    # The merchant key (a backend) may name any shopper, so each event is judged on its own.
    batch = [
        event("e1", pageType="PRODUCT", sessionId=S1, recommendationId="r1", position=1),
        event(
            "e2",
            "PURCHASE",
            price={"amount": 8999, "currency": "EUR"},
            orderId="o1",
            quantity=1,
        ),
        event("e3", "SEARCH", query="trail shoes"),
        event("e1"),
        event("e4", productId="missing"),
        event("e5", "RATING", rating=9),
        event("e6", timestamp="2026-01-01T10:00:00"),
        event("e7", timestamp=iso(-10)),
        event("e8", userId="ann@example.com"),
        event("e9", "PURCHASE", orderId="o2"),
    ]
    res = await graphql(TRACK, {"events": batch})
    out = res["data"]["trackEvents"]
    assert (out["accepted"], out["duplicates"], out["rejected"]) == (3, 1, 6)
    reasons = {r["eventId"]: (r["status"], r["reason"]) for r in out["results"][3:]}
    assert reasons == {
        "e1": ("DUPLICATE", "event_id: same as event 0 of this batch"),
        "e4": ("REJECTED", "product_id: unknown product 'missing'"),
        "e5": ("REJECTED", "rating: must be a whole number from 1 to 5, got 9"),
        "e6": ("REJECTED", "timestamp: must carry a time zone (UTC offset)"),
        "e7": ("REJECTED", "timestamp: more than 5 minutes in the future"),
        "e8": (
            "REJECTED",
            "user_id: looks like an e-mail address; send an opaque id, never personal data",
        ),
        "e9": ("REJECTED", "price: is required for purchase events"),
    }
    stored = await shop.collection("events").find_one({"client_event_id": "e1"})
    assert stored["page_type"] == "product" and stored["recommendation_id"] == "r1"
    again = await graphql(TRACK, {"events": batch[:3]})
    assert again["data"]["trackEvents"]["duplicates"] == 3


async def test_track_events_caps_the_batch(
    shop: Store, graphql: GraphQLCall, storefront_key: str, shopper_token: ShopperTokenFactory
) -> None:
    batch = [event(f"e{i}") for i in range(501)]
    res = await graphql(TRACK, {"events": batch}, key=storefront_key, token=shopper_token("u1"))
    assert res["data"] is None
    assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "501 events; at most 500 per call" in res["errors"][0]["message"]
    assert await shop.collection("events").count_documents({}) == 0


async def test_track_events_needs_a_key(shop: Store, graphql: GraphQLCall) -> None:
    res = await graphql(TRACK, {"events": [event("e1")]}, key=None)
    assert res["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_profile_after_identify_and_preferences(
    shop: Store, graphql: GraphQLCall, storefront_key: str, shopper_token: ShopperTokenFactory
) -> None:
    anonymous = [
        event("a1", userId=None, sessionId=S_ANON, timestamp=iso(30)),
        event("a2", "ADD_TO_CART", userId=None, sessionId=S_ANON, productId="sock.1", quantity=2),
    ]
    await graphql(TRACK, {"events": anonymous}, key=storefront_key)
    u1 = shopper_token("u1", S_ANON)
    res = await graphql(IDENTIFY, {"s": S_ANON, "u": "u1"}, key=storefront_key, token=u1)
    assert res["data"]["identify"] == {"linked": True, "mergedEvents": 2}
    res = await graphql(IDENTIFY, {"s": S_ANON, "u": "u1"}, key=storefront_key, token=u1)
    assert res["data"]["identify"] == {"linked": True, "mergedEvents": 0}
    u2 = shopper_token("u2", S_ANON)
    res = await graphql(IDENTIFY, {"s": S_ANON, "u": "u2"}, key=storefront_key, token=u2)
    assert "already linked to another shopper" in res["errors"][0]["message"]
    await graphql(
        TRACK,
        {
            "events": [
                event(
                    "p1",
                    "PURCHASE",
                    productId="shoe-2",
                    orderId="o1",
                    price={"amount": 7000, "currency": "EUR"},
                ),
                event("n1", "NOT_INTERESTED", productId="shoe-1"),
                event("r1", "REVIEW", productId="sock.1", review="Warm", rating=5),
            ]
        },
        key=storefront_key,
        token=u1,
    )
    prefs = {
        "categories": ["Accessories > Hats"],
        "brands": ["Topper"],
        "sizes": ["42"],
        "priceMin": {"amount": 1000, "currency": "EUR"},
        "answers": [{"key": "style", "value": "classic"}],
    }
    res = await graphql(PREFS, {"u": "u1", "p": prefs}, key=storefront_key, token=u1)
    assert res["data"]["setPreferences"]["priceMin"] == {"amount": 1000, "currency": "EUR"}

    denied = await graphql(PROFILE, {"u": "u1"}, key=storefront_key, token=u1)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    profile = (await graphql(PROFILE, {"u": "u1"}))["data"]["profile"]
    assert profile["userId"] == "u1" and profile["consentPersonalization"] is True
    assert profile["recentlyViewed"] == ["shoe-1"]
    assert profile["cart"] == [{"productId": "sock.1", "quantity": 2}]
    assert profile["notInterested"] == ["shoe-1"]
    assert profile["ratings"] == [{"productId": "sock.1", "rating": 5}]
    # A storefront's purchase feeds recommendations but is no order until the merchant says so.
    assert profile["purchases"][0]["productId"] == "shoe-2" and profile["orders"] == 0
    assert profile["totalSpent"] == {"amount": 0, "currency": "EUR"}
    assert profile["typicalPrice"] == {"amount": 7000, "currency": "EUR"}
    assert profile["sessions"] == 1
    scores = [a["score"] for a in profile["categoryAffinities"]]
    assert scores == sorted(scores, reverse=True)
    # Road: purchase 8; Socks: cart 4 + 5-star review 3; Hats: stated 5; Shoes: view 1 +
    # purchase 8 - not interested 5; Trail: view 1 - not interested 5.
    ranked = profile["categoryAffinities"]
    assert [a["key"] for a in ranked] == [
        "Shoes > Road",
        "Socks",
        "Accessories",
        "Accessories > Hats",
        "Shoes",
        "Shoes > Trail",
    ]
    assert [a["score"] for a in ranked] == pytest.approx([8, 7, 5, 5, 4, -4], rel=1e-3)
    assert profile["preferences"]["answers"] == [{"key": "style", "value": "classic"}]
    assert (await graphql(PROFILE, {"u": "nobody"}))["data"]["profile"] is None


async def test_bad_preferences_and_ids_are_user_errors(
    shop: Store, graphql: GraphQLCall, storefront_key: str, shopper_token: ShopperTokenFactory
) -> None:
    u1 = shopper_token("u1")
    bad = {"u": "u1", "p": {"categories": ["A > "]}}
    res = await graphql(PREFS, bad, key=storefront_key, token=u1)
    assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "categories" in res["errors"][0]["message"]
    res = await graphql(PREFS, {"u": "bob@example.com", "p": {}})
    assert "userId: looks like an e-mail" in res["errors"][0]["message"]
    answers = [{"key": "k", "value": "1"}, {"key": "k", "value": "2"}]
    res = await graphql(PREFS, {"u": "u1", "p": {"answers": answers}}, key=storefront_key, token=u1)
    assert "given twice" in res["errors"][0]["message"]


async def test_consent_off_through_graphql(
    shop: Store, graphql: GraphQLCall, storefront_key: str, shopper_token: ShopperTokenFactory
) -> None:
    u1 = shopper_token("u1")
    await graphql(TRACK, {"events": [event("before")]}, key=storefront_key, token=u1)
    res = await graphql(CONSENT, {"u": "u1", "on": False}, key=storefront_key, token=u1)
    assert res["data"]["setConsent"] == {
        "userId": "u1",
        "personalization": False,
        "deleted": [
            {"collection": "attributions", "count": 0},
            {"collection": "events", "count": 1},
            {"collection": "exposures", "count": 0},
            {"collection": "recommendations", "count": 0},
            {"collection": "session_links", "count": 0},
        ],
    }
    after = {"events": [event("after", sessionId=S9)]}
    res = await graphql(TRACK, after, key=storefront_key, token=u1)
    assert res["data"]["trackEvents"]["results"][0]["status"] == "ACCEPTED"
    assert await shop.collection("events").count_documents({"user_id": "u1"}) == 0
    assert await shop.collection("events").count_documents({"session_id": S9}) == 0
    stated = {"u": "u1", "p": {"brands": ["Stride"]}}
    res = await graphql(PREFS, stated, key=storefront_key, token=u1)
    assert res["errors"][0]["extensions"]["code"] == "CONSENT_WITHHELD"
    profile = (await graphql(PROFILE, {"u": "u1"}))["data"]["profile"]
    assert profile["consentPersonalization"] is False and profile["recentlyViewed"] == []


async def test_export_and_erase_through_graphql(
    shop: Store,
    app: Starlette,
    graphql: GraphQLCall,
    storefront_key: str,
    shopper_token: ShopperTokenFactory,
) -> None:
    sessions = {"u1": S1, "u2": S9}
    for user in ("u1", "u2"):
        token = shopper_token(user)
        batch = [event(f"{user}-{i}", userId=user, sessionId=sessions[user]) for i in range(3)]
        await graphql(TRACK, {"events": batch}, key=storefront_key, token=token)
        stated = {"u": user, "p": {"brands": ["Stride"]}}
        await graphql(PREFS, stated, key=storefront_key, token=token)

    forgotten: list[str] = []

    async def plugin_eraser(user_id: str, sessions: Sequence[str]) -> int:
        forgotten.append(user_id)
        return 2

    app.state.runtime.privacy_hooks.erasers.append(plugin_eraser)

    denied = await graphql(EXPORT, {"u": "u1"}, key=storefront_key)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    export = (await graphql(EXPORT, {"u": "u1"}))["data"]["exportUserData"]
    assert len(export["collections"]["events"]) == 3
    assert export["profile"]["preferences"]["brands"] == ["Stride"]
    assert not any("u2" in s for s in walk_strings(export))
    other_before = (await graphql(EXPORT, {"u": "u2"}))["data"]["exportUserData"]

    denied = await graphql(ERASE, {"u": "u1"}, key=storefront_key)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    erased = (await graphql(ERASE, {"u": "u1"}))["data"]["eraseUser"]
    counts = {d["collection"]: d["count"] for d in erased["deleted"]}
    assert set(USER_DATA) <= set(counts)  # every collection holding shopper data is covered
    assert {name: n for name, n in counts.items() if n} == {
        "events": 3,
        "plugin:" + plugin_eraser.__qualname__: 2,
        "profiles": 1,
    }
    assert (erased["total"], erased["alreadyErased"], erased["complete"]) == (6, False, True)
    assert forgotten == ["u1"]
    again = (await graphql(ERASE, {"u": "u1"}))["data"]["eraseUser"]
    assert again["alreadyErased"] is True

    other_after = (await graphql(EXPORT, {"u": "u2"}))["data"]["exportUserData"]
    for doc in (other_before, other_after):
        doc.pop("exported_at")
        doc["profile"].pop("as_of")
        for kind in ("category_affinities", "brand_affinities", "tag_affinities"):
            doc["profile"].pop(kind)  # decayed to the moment of each export
    assert other_after == other_before

    u1 = shopper_token("u1", S_ANON)
    late = await graphql(TRACK, {"events": [event("late")]}, key=storefront_key, token=u1)
    assert late["data"]["trackEvents"]["results"][0]["reason"].startswith(
        "user_id: this shopper's data was erased"
    )
    res = await graphql(CONSENT, {"u": "u1", "on": True}, key=storefront_key, token=u1)
    assert res["errors"][0]["extensions"]["code"] == "USER_ERASED"
    res = await graphql(PREFS, {"u": "u1", "p": {}}, key=storefront_key, token=u1)
    assert res["errors"][0]["extensions"]["code"] == "USER_ERASED"
    res = await graphql(IDENTIFY, {"s": S_ANON, "u": "u1"}, key=storefront_key, token=u1)
    assert res["errors"][0]["extensions"]["code"] == "USER_ERASED"
