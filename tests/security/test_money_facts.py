"""Money facts come from the merchant side: a storefront's purchases feed recommendations but
are no orders, spend or revenue; event ids and idempotency keys belong to their caller."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shopfront.catalog.products import upsert_products
from shopfront.experiments import reports
from shopfront.platform.config import Settings
from shopfront.platform.store import Store
from shopfront.shoppers.events import ingest_events
from shopfront.testing import GraphQLCall, ShopperTokenFactory

from tests.experiments.test_attribution import served
from tests.experiments.test_reports import END, T0, started, two_arms
from tests.plugin_doubles import product_doc

pytestmark = pytest.mark.security

UPSERT = "mutation($p: [ProductInput!]!) { upsertProducts(input: {products: $p}) { status } }"
TRACK = """
mutation($e: [EventInput!]!) {
  trackEvents(input: {events: $e}) {
    accepted duplicates rejected results { eventId status reason }
  }
}
"""
PROFILE = """
query($u: ID!) {
  profile(userId: $u) { orders totalSpent { amount } lastPurchaseAt purchases { productId } }
}
"""
CREATE = "mutation($i: CouponCampaignInput!) { createCouponCampaign(input: $i) { id } }"
VALIDATE = """
query($u: ID) {
  validateCoupons(cart: {currency: "EUR", lines: [{productId: "p1", quantity: 1}]},
                  codes: ["VIP"], userId: $u) { coupons { applies refusal } }
}
"""
REDEEM = """
mutation($u: ID!, $o: ID!, $k: String!) {
  redeemCoupon(input: {code: "TENOFF", userId: $u, orderId: $o, idempotencyKey: $k,
               cart: {currency: "EUR", lines: [{productId: "p1", quantity: 1}]}}) {
    ok refusal replayed redemption { userId orderId }
  }
}
"""


def purchase(eid: str, amount: int, order: str, **extra: Any) -> dict[str, Any]:
    return {
        "eventId": eid,
        "type": "PURCHASE",
        "timestamp": datetime.now(UTC).isoformat(),
        "productId": "p1",
        "price": {"amount": amount, "currency": "EUR"},
        "orderId": order,
        **extra,
    }


@pytest.fixture
async def shop(graphql: GraphQLCall) -> GraphQLCall:
    product = {"id": "p1", "title": "Mug", "price": {"amount": 1000, "currency": "EUR"}}
    assert "errors" not in await graphql(UPSERT, {"p": [product]})
    vip = {
        "id": "vip",
        "title": "VIP",
        "currency": "EUR",
        "discount": {"kind": "FIXED", "amount": {"amount": 100, "currency": "EUR"}},
        "segment": {"minTotalSpent": {"amount": 50_000, "currency": "EUR"}},
        "sharedCode": "VIP",
    }
    assert "errors" not in await graphql(CREATE, {"i": vip})
    return graphql


async def test_a_storefront_purchase_is_no_order_and_buys_no_segment(
    shop: GraphQLCall, storefront_key: str, shopper_token: ShopperTokenFactory
) -> None:
    token = shopper_token("a")
    # The attacker's own shopper claims a 1,000.00 EUR purchase from the browser.
    res = await shop(
        TRACK, {"e": [purchase("p-1", 100_000, "fake")]}, key=storefront_key, token=token
    )
    assert res["data"]["trackEvents"]["accepted"] == 1
    profile = (await shop(PROFILE, {"u": "a"}))["data"]["profile"]
    assert profile["purchases"] == [{"productId": "p1"}]  # it still feeds "buy again"
    assert (profile["orders"], profile["totalSpent"], profile["lastPurchaseAt"]) == (
        0,
        {"amount": 0},
        None,
    )
    check = await shop(VALIDATE, {"u": "a"}, key=storefront_key, token=token)
    assert check["data"]["validateCoupons"]["coupons"] == [
        {"applies": False, "refusal": "NOT_ELIGIBLE"}
    ]
    # The merchant's backend confirms a real order: now it counts.
    res = await shop(TRACK, {"e": [purchase("order-7", 60_000, "o7", userId="a")]})
    assert res["data"]["trackEvents"]["accepted"] == 1
    profile = (await shop(PROFILE, {"u": "a"}))["data"]["profile"]
    assert (profile["orders"], profile["totalSpent"]) == (1, {"amount": 60_000})
    assert profile["lastPurchaseAt"] is not None
    check = await shop(VALIDATE, {"u": "a"}, key=storefront_key, token=token)
    assert check["data"]["validateCoupons"]["coupons"] == [{"applies": True, "refusal": None}]


async def test_event_ids_belong_to_their_sender(
    shop: GraphQLCall, store: Store, storefront_key: str, shopper_token: ShopperTokenFactory
) -> None:
    def view(eid: str, **who: str) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat()
        return {"eventId": eid, "type": "VIEW", "timestamp": now, "productId": "p1", **who}

    # Someone squats the predictable id "view-1" first: anonymously, and as another shopper.
    squatter = str(uuid.uuid4())
    first = await shop(TRACK, {"e": [view("view-1", sessionId=squatter)]}, key=storefront_key)
    other = await shop(TRACK, {"e": [view("view-1")]}, key=storefront_key, token=shopper_token("b"))
    assert first["data"]["trackEvents"]["accepted"] == other["data"]["trackEvents"]["accepted"] == 1
    # The victim's own event with that id is still new; the victim's retry is a duplicate.
    mine = {"e": [view("view-1")]}
    token = shopper_token("a")
    sent = await shop(TRACK, mine, key=storefront_key, token=token)
    assert sent["data"]["trackEvents"]["results"] == [
        {"eventId": "view-1", "status": "ACCEPTED", "reason": None}
    ]
    again = await shop(TRACK, mine, key=storefront_key, token=token)
    assert again["data"]["trackEvents"]["duplicates"] == 1
    assert await store.collection("events").count_documents({"user_id": "a"}) == 1


async def test_idempotency_keys_belong_to_their_shopper(shop: GraphQLCall) -> None:
    tenoff = {
        "id": "tenoff",
        "title": "Ten off",
        "currency": "EUR",
        "discount": {"kind": "FIXED", "amount": {"amount": 100, "currency": "EUR"}},
        "sharedCode": "TENOFF",
    }
    assert "errors" not in await shop(CREATE, {"i": tenoff})
    first = await shop(REDEEM, {"u": "a", "o": "o1", "k": "checkout-1"})
    assert first["data"]["redeemCoupon"]["ok"]
    # The same key for another shopper is that shopper's own: no replay of a's result.
    other = await shop(REDEEM, {"u": "b", "o": "o2", "k": "checkout-1"})
    out = other["data"]["redeemCoupon"]
    assert out["ok"] and not out["replayed"] and out["redemption"]["userId"] == "b"
    retry = await shop(REDEEM, {"u": "a", "o": "o1", "k": "checkout-1"})
    assert retry["data"]["redeemCoupon"]["replayed"]


async def test_experiment_revenue_counts_only_confirmed_purchases(
    store: Store, settings: Settings
) -> None:
    from tests.experiments.test_reports import _exposed

    await upsert_products(store, [product_doc("p1")])
    exp = await started(store, two_arms("money"))
    await _exposed(store, exp, {"control": 2})

    def event(eid: str, user: str, amount: int, confirmed: bool) -> dict[str, Any]:
        return {
            "event_id": eid,
            "type": "purchase",
            "user_id": user,
            "timestamp": T0 + timedelta(hours=1),
            "product_id": "p1",
            "price": {"amount": amount, "currency": "EUR"},
            "order_id": f"o-{eid}",
            "confirmed": confirmed,
        }

    results = await ingest_events(
        store,
        settings,
        [event("real", "control-0", 2500, True), event("claimed", "control-1", 99_999, False)],
        now=T0 + timedelta(hours=2),
    )
    assert [r.status.value for r in results] == ["accepted", "accepted"], results
    report = await reports.experiment_report(store, exp.id, now=END)
    control = report.variants[0]
    assert (control.conversions, control.orders, control.revenue.amount) == (1, 1, 2500)


async def test_attribution_revenue_counts_only_confirmed_purchases(
    shop: GraphQLCall, store: Store, storefront_key: str, shopper_token: ShopperTokenFactory
) -> None:
    from shopfront.experiments import attribution

    await served(store, "rec-1", "recommended_for_you", [("p1", "recommended_for_you")])
    claimed = purchase("b-1", 99_999, "fake", recommendationId="rec-1")
    res = await shop(TRACK, {"e": [claimed]}, key=storefront_key, token=shopper_token("u1"))
    assert res["data"]["trackEvents"]["accepted"] == 1
    credited = store.collection(attribution.ATTRIBUTIONS)
    assert await credited.count_documents({"type": "purchase"}) == 0
    real = purchase("b-2", 1500, "o1", recommendationId="rec-1", userId="u1")
    assert (await shop(TRACK, {"e": [real]}))["data"]["trackEvents"]["accepted"] == 1
    [doc] = await credited.find({"type": "purchase"}).to_list(None)
    assert doc["revenue"] == {"amount": 1500, "currency": "EUR"}
