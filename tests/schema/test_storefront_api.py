"""The storefront query end to end: the contract shape from the issue, and a response that
still arrives — with the other slots filled — when plugins raise, sleep, spin, return the
wrong type or return far too much, each named in `degraded`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from shopfront.catalog.products import upsert_products
from shopfront.offers.contract import CouponStrategySpec, PromotionSpec
from shopfront.platform.store import Store
from shopfront.recommend.contract import RecommenderSpec
from shopfront.testing import StorefrontClientFactory

from tests.plugin_doubles import (
    Flood,
    Raising,
    RaisingCoupon,
    RaisingPromotion,
    Sleeping,
    SleepProbe,
    SpecPlugin,
    SpinControl,
    Spinning,
    WrongType,
    fixed_coupon,
    list_recommender,
    percent_off,
    product_doc,
)

ISSUE_QUERY = """
query {
  storefront(input: {userId: "u1", page: HOME, cart: {lines: [{productId: "p1", quantity: 2}], couponCodes: []}}) {
    requestId
    slots { name title recommendationId
            items { position score product { id title price { amount currency } } reasons { code text strategy } } }
    coupons { code title expiresAt reason { code text strategy } }
    cart { subtotal { amount currency } discountTotal { amount currency } total { amount currency }
           appliedPromotions { name amount { amount currency } } nudges { text } }
    degraded { strategy reason }
  }
}
"""  # noqa: E501 - kept exactly as the issue writes it

GOOD = SpecPlugin(
    recommenders=[
        list_recommender("trending", ["p2", "p3"]),
        list_recommender("recently_viewed", ["p3"]),
        list_recommender("recommended_for_you", ["p4", "p2"]),
    ],
    coupons=[fixed_coupon("welcome", "WELCOME10")],
    promotions=[percent_off("ten_off", 10)],
)


@pytest.fixture
async def catalog(store: Store) -> None:
    await upsert_products(store, [product_doc(f"p{i}") for i in range(1, 6)])


async def test_the_issue_query_returns_the_composed_answer(
    catalog: None, storefront_client: StorefrontClientFactory
) -> None:
    sf = await storefront_client([("good", GOOD)])
    body = await sf.http.post(
        "/graphql", json={"query": ISSUE_QUERY}, headers={"authorization": f"Bearer {sf.key}"}
    )
    data = body.json()
    assert "errors" not in data, data
    out = data["data"]["storefront"]
    assert out["degraded"] == []
    assert [s["name"] for s in out["slots"]] == [
        "recommended_for_you",
        "trending",
        "recently_viewed",
    ]
    first = out["slots"][0]
    assert first["title"] == "Recommended for you"
    # p2 is in both strategies' lists, so the merge ranks it first, with both reasons
    assert [i["product"]["id"] for i in first["items"]] == ["p2", "p4", "p3"]
    assert [i["position"] for i in first["items"]] == [1, 2, 3]
    assert first["items"][0]["reasons"] == [
        {
            "code": "LISTED",
            "text": "Listed by recommended_for_you",
            "strategy": "recommended_for_you",
        },
        {"code": "LISTED", "text": "Listed by trending", "strategy": "trending"},
    ]
    assert len({s["recommendationId"] for s in out["slots"]}) == 3
    assert out["coupons"] == [
        {
            "code": "WELCOME10",
            "title": "WELCOME10 off",
            "expiresAt": None,
            "reason": {"code": "WELCOME", "text": "Welcome!", "strategy": "welcome"},
        }
    ]
    cart = out["cart"]
    assert cart["subtotal"] == {"amount": 2000, "currency": "EUR"}
    assert cart["discountTotal"] == {"amount": 200, "currency": "EUR"}
    assert cart["total"] == {"amount": 1800, "currency": "EUR"}
    assert cart["appliedPromotions"] == [
        {"name": "ten_off", "amount": {"amount": 200, "currency": "EUR"}}
    ]
    assert out["requestId"] == body.headers["x-request-id"]


async def test_misbehaving_plugins_are_left_out_and_named(
    catalog: None, storefront_client: StorefrontClientFactory
) -> None:
    probe, spin = SleepProbe(), SpinControl()
    plugins: list[tuple[str, object]] = [
        ("good", GOOD),
        ("raises", SpecPlugin([RecommenderSpec("raiser", Raising, "raises")])),
        (
            "sleeps",
            SpecPlugin(
                [RecommenderSpec("sleeper", lambda s: Sleeping(s, probe), "", {"sleep_s": 30.0})]
            ),
        ),
        ("spins", SpecPlugin([RecommenderSpec("spinner", lambda s: Spinning(s, spin), "")])),
        ("wrong", SpecPlugin([RecommenderSpec("wrong_type", WrongType, "")])),
        ("floods", SpecPlugin([RecommenderSpec("flooder", Flood, "")])),
        (
            "bad_money",
            SpecPlugin(
                coupons=[CouponStrategySpec("coupon_down", RaisingCoupon, "")],
                promotions=[
                    PromotionSpec(
                        "broken_promo", RaisingPromotion, "", {"percent": 0, "priority": 1}
                    )
                ],
            ),
        ),
    ]
    # Offenders get 100 ms. A spinning thread takes its share of the interpreter lock until
    # the watchdog interrupts it, so the well-behaved strategies get a longer deadline: the
    # response's budget is the largest per-strategy deadline (1 s here).
    patient = {"timeout_ms": 1000}
    # (the flooder too: building 10,000 candidates takes a while, and its output is the point)
    names = ("trending", "recently_viewed", "welcome", "flooder")
    config = {"strategies": {n: patient for n in names}}
    sf = await storefront_client(plugins, config=config, strategy_timeout_ms=100)
    offenders = ["raiser", "sleeper", "spinner", "wrong_type", "flooder"]
    slots = [{"name": "top", "strategy": "trending"}]
    slots += [{"name": f"slot_{n}", "strategy": n} for n in offenders]
    slots += [{"name": "again", "strategy": "recently_viewed"}]
    try:
        out = await sf.query(
            {
                "userId": "u1",
                "page": "HOME",
                "cart": {"lines": [{"productId": "p1", "quantity": 1}]},
                "slots": slots,
            }
        )
        # the answer did not wait for the spinning or the sleeping strategy to end
        assert spin.started.is_set() and not spin.finished.is_set()
        assert not probe.finished.is_set()
    finally:
        spin.release.set()
    filled = {s["name"]: [i["product"]["id"] for i in s["items"]] for s in out["slots"]}
    assert filled == {
        "top": ["p2", "p3"],
        **{f"slot_{n}": [] for n in offenders},
        "again": ["p3"],
    }
    degraded = {d["strategy"]: d["reason"] for d in out["degraded"]}
    assert degraded == {
        "raiser": "error: RuntimeError",
        "sleeper": "timeout after 100 ms",
        "spinner": "timeout after 100 ms",
        "wrong_type": "invalid output: expected a list of candidates, got dict",
        "flooder": "invalid output: returned 10000 candidates; at most 1000",
        "coupon_down": "error: KeyError",
        "broken_promo": "error: ZeroDivisionError",
    }
    assert [c["code"] for c in out["coupons"]] == ["WELCOME10"]
    cart = out["cart"]
    assert [a["name"] for a in cart["appliedPromotions"]] == ["ten_off"]
    broken = {"name": "broken_promo", "reason": "temporarily unavailable", "code": "UNAVAILABLE"}
    assert broken in cart["notApplied"]
    health = {s.name: sf.host.health(s.name) for s in sf.host.strategies()}
    assert health["spinner"].timeouts == 1 and health["raiser"].failures == 1


async def test_a_spinning_plugin_does_not_hold_up_other_requests(
    catalog: None, storefront_client: StorefrontClientFactory
) -> None:
    spin = SpinControl()
    plugins: list[tuple[str, object]] = [
        ("good", GOOD),
        ("spins", SpecPlugin([RecommenderSpec("spinner", lambda s: Spinning(s, spin), "")])),
    ]
    config = {"strategies": {"trending": {"timeout_ms": 1000}}}
    sf = await storefront_client(plugins, config=config, strategy_timeout_ms=100)
    try:
        spinning = asyncio.create_task(
            sf.query(
                {"sessionId": "s1", "page": "HOME", "slots": [{"name": "x", "strategy": "spinner"}]}
            )
        )
        assert await asyncio.to_thread(spin.started.wait, 10)
        other = await sf.query({"sessionId": "s2", "page": "SEARCH"})
        assert [i["product"]["id"] for i in other["slots"][0]["items"]] == ["p2", "p3"]
        assert not spin.finished.is_set()  # served while the other request's plugin spun
        first = await spinning
        assert first["degraded"] == [{"strategy": "spinner", "reason": "timeout after 100 ms"}]
    finally:
        spin.release.set()


async def test_bad_cart_lines_are_reported_on_their_line_and_the_rest_is_priced(
    catalog: None, storefront_client: StorefrontClientFactory
) -> None:
    sf = await storefront_client([("good", GOOD)])
    lines = [
        {"productId": "p1", "quantity": -1},
        {"productId": "p2", "quantity": 2},
        {"productId": "nope", "quantity": 1},
        {"productId": "  ", "quantity": 1},
        {"productId": "p3", "quantity": 1},
    ]
    body = await sf.raw({"userId": "u", "page": "CART", "cart": {"lines": lines}})
    assert "errors" not in body, body
    out = body["data"]["storefront"]
    assert out["slots"][0]["name"] == "complete_your_order"
    cart = out["cart"]
    assert [(line["index"], line["productId"]) for line in cart["lines"]] == [(1, "p2"), (4, "p3")]
    assert cart["subtotal"] == {"amount": 3000, "currency": "EUR"}  # 2 x 1000 + 1000
    assert [(e["index"], e["productId"], e["code"]) for e in cart["errors"]] == [
        (0, "p1", "INVALID_QUANTITY"),
        (2, "nope", "PRODUCT_NOT_FOUND"),
        (3, "", "INVALID_PRODUCT_ID"),
    ]
    assert "cart.lines[0].quantity must be from 1 to 999, got -1" in cart["errors"][0]["message"]


async def test_an_unknown_product_on_a_product_page_is_a_clear_error(
    catalog: None, storefront_client: StorefrontClientFactory
) -> None:
    sf = await storefront_client([("good", GOOD)])
    body = await sf.raw({"userId": "u", "page": "PRODUCT", "productId": "sku-gone"})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "PRODUCT_NOT_FOUND"
    assert "sku-gone" in error["message"] and error["path"] == ["storefront"]
    known = await sf.raw({"userId": "u", "page": "PRODUCT", "productId": "p1"})
    assert "errors" not in known


@pytest.mark.parametrize(
    ("input", "message"),
    [
        ({"page": "HOME"}, "userId or sessionId is required"),
        ({"userId": "u", "page": "HOME", "slots": [{"name": "x", "limit": 60}]}, "from 1 to 50"),
        ({"userId": "u", "page": "HOME", "currency": "XX"}, "not an ISO 4217 code"),
    ],
)
async def test_bad_input_is_a_clear_user_error(
    storefront_client: StorefrontClientFactory, input: dict[str, Any], message: str
) -> None:
    sf = await storefront_client()
    body = await sf.raw(input)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert message in error["message"]


async def test_missing_strategies_are_reported_not_loaded(
    catalog: None, storefront_client: StorefrontClientFactory
) -> None:
    sf = await storefront_client()
    out = await sf.query({"sessionId": "s", "page": "PRODUCT", "productId": "p1"})
    assert [s["name"] for s in out["slots"]] == ["similar_items", "bought_together"]
    assert out["degraded"] == [
        {"strategy": "similar_items", "reason": "not loaded"},
        {"strategy": "bought_together", "reason": "not loaded"},
    ]


async def test_the_storefront_needs_a_key(storefront_client: StorefrontClientFactory) -> None:
    sf = await storefront_client()
    resp = await sf.http.post("/graphql", json={"query": ISSUE_QUERY})
    assert resp.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
