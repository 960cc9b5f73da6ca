"""Attribution of clicks, add-to-carts and purchases, and performance per strategy and slot.

The fixtures write documents straight into the collections other modules own (events,
recommendations, redemptions), in the field names `shopfront.experiments.attribution` documents.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shopfront.experiments import attribution as at
from shopfront.experiments import definitions as ex
from shopfront.experiments import exposure
from shopfront.platform.money import Money
from shopfront.platform.store import Store

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
EUR = "EUR"


def event(
    event_id: str,
    type_: str,
    when: datetime,
    *,
    user: str | None = "u1",
    session: str | None = "s1",
    product: str = "p1",
    rec: str | None = None,
    price: int | None = None,
    quantity: int | None = None,
    order: str | None = None,
    position: int | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": type_,
        "user_id": user,
        "session_id": session,
        "timestamp": when,
        "product_id": product,
        "quantity": quantity,
        "price": {"amount": price, "currency": EUR} if price is not None else None,
        "order_id": order,
        "recommendation_id": rec,
        "position": position,
        "page_type": "home",
    }


async def served(
    store: Store,
    rec_id: str,
    slot: str,
    items: list[tuple[str, str]],
    *,
    experiment: str | None = None,
    variant: str | None = None,
) -> None:
    """A recommendation document as the storefront stores it."""
    await store.collection(at.RECOMMENDATIONS).insert_one(
        {
            "_id": rec_id,
            "request_id": f"req-{rec_id}",
            "user_id": "u1",
            "session_id": "s1",
            "slot": slot,
            "items": [
                {"product_id": p, "strategy": s, "position": i, "score": 1.0}
                for i, (p, s) in enumerate(items, start=1)
            ],
            "experiment": experiment,
            "variant": variant,
            "created_at": T0,
        }
    )


async def credit(store: Store, event_id: str) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = await store.collection(at.ATTRIBUTIONS).find_one({"_id": event_id})
    return doc


async def test_click_then_purchase_with_the_recommendation_id(store: Store) -> None:
    await served(
        store,
        "rec-1",
        "recommended_for_you",
        [("p1", "recommended_for_you"), ("p2", "trending")],
        experiment="exp_a",
        variant="blend",
    )
    events = [
        event("c1", "click", T0, product="p2", rec="rec-1", position=2),
        event("a1", "add_to_cart", T0 + timedelta(minutes=1), product="p2", rec="rec-1"),
        event(
            "b1",
            "purchase",
            T0 + timedelta(days=3),  # no window for an explicit recommendation id
            product="p2",
            rec="rec-1",
            price=1250,
            quantity=2,
            order="o1",
        ),
    ]
    summary = await at.attribute_events(store, events, window_hours=24, now=T0)
    assert summary == at.AttributionSummary(by_recommendation=3, by_last_click=0, unattributed=0)
    purchase = await credit(store, "b1")
    assert purchase is not None
    assert {
        k: purchase[k] for k in ("slot", "strategy", "position", "experiment_id", "variant")
    } == {
        "slot": "recommended_for_you",
        "strategy": "trending",
        "position": 2,
        "experiment_id": "exp_a",
        "variant": "blend",
    }
    assert purchase["method"] == "recommendation"
    assert purchase["revenue"] == {"amount": 2500, "currency": EUR}
    click = await credit(store, "c1")
    assert click is not None and click["revenue"] is None and click["strategy"] == "trending"


async def test_purchase_without_id_goes_to_the_last_click_within_the_window(store: Store) -> None:
    await served(store, "rec-1", "trending", [("p1", "trending")])
    await served(store, "rec-2", "recommended_for_you", [("p1", "recommended_for_you")])
    # Two clicks on p1 from different slots; then purchases without a recommendation id.
    clicks = [
        event("c1", "click", T0, rec="rec-1"),
        event("c2", "click", T0 + timedelta(hours=1), rec="rec-2"),
    ]
    await at.attribute_events(store, clicks, window_hours=24, now=T0)
    purchases = [
        # Within 24 hours of the last click: credited to it (not to the earlier one).
        event("b1", "purchase", T0 + timedelta(hours=20), price=999, order="o1"),
        # 25 hours after the last click: outside the window, not attributed.
        event("b2", "purchase", T0 + timedelta(hours=26), price=999, order="o2"),
        # Another shopper (other user, other session) never clicked: not attributed.
        event("b3", "purchase", T0 + timedelta(hours=2), user="u2", session="s2", price=1),
        # Another product: not attributed.
        event("b4", "purchase", T0 + timedelta(hours=2), product="p9", price=1),
    ]
    summary = await at.attribute_events(store, purchases, window_hours=24, now=T0)
    assert summary == at.AttributionSummary(by_recommendation=0, by_last_click=1, unattributed=3)
    got = await credit(store, "b1")
    assert got is not None
    assert (got["method"], got["slot"], got["strategy"], got["recommendation_id"]) == (
        "last_click",
        "recommended_for_you",
        "recommended_for_you",
        "rec-2",
    )
    assert got["revenue"] == {"amount": 999, "currency": EUR}
    for missing in ("b2", "b3", "b4"):
        assert await credit(store, missing) is None
    # A longer window reaches the later purchase.
    wider = await at.attribute_events(store, purchases[1:2], window_hours=48, now=T0)
    assert wider.by_last_click == 1


async def test_last_click_matches_the_session_before_login_in_one_batch(store: Store) -> None:
    await served(store, "rec-1", "trending", [("p1", "trending")])
    batch = [
        # The purchase comes first in the batch, but happened after the click.
        event("b1", "purchase", T0 + timedelta(hours=1), user="u7", session="anon-1", price=500),
        event("c1", "click", T0, user=None, session="anon-1", rec="rec-1"),
    ]
    summary = await at.attribute_events(store, batch, window_hours=24, now=T0)
    assert summary == at.AttributionSummary(by_recommendation=1, by_last_click=1, unattributed=0)
    # Idempotent: attributing the same events again adds nothing.
    await at.attribute_events(store, batch, window_hours=24, now=T0)
    assert await store.collection(at.ATTRIBUTIONS).count_documents({}) == 2


async def test_unknown_recommendation_and_add_to_cart_without_id(store: Store) -> None:
    summary = await at.attribute_events(
        store,
        [
            event("a1", "add_to_cart", T0),
            event("c1", "click", T0, rec="rec-gone"),
            event("v1", "view", T0, rec="rec-gone"),
        ],
        now=T0,
    )
    assert summary == at.AttributionSummary(0, 0, 2)


async def _performance_fixture(store: Store) -> None:
    """Two slots served 10 times each (sampled at rate 1/2, so 5 logged with weight 2),
    clicks, carts and purchases, and coupon redemptions."""
    for i in range(0, 10, 2):  # the logged half; weight 2 stands for the other half
        for slot, items in (
            ("recommended_for_you", [("p1", "recommended_for_you"), ("p2", "trending")]),
            ("trending", [("p3", "trending")]),
        ):
            rec_id = f"{slot}-{i}"
            await served(store, rec_id, slot, items)
            await store.collection(ex.EXPOSURES).insert_one(
                exposure.slot_exposure_document(
                    exposure.ServedSlot(
                        rec_id,
                        slot,
                        tuple(
                            exposure.ServedItem(p, s, n) for n, (p, s) in enumerate(items, start=1)
                        ),
                    ),
                    f"req-{i}",
                    "u1",
                    "s1",
                    2.0,
                    None,
                    T0 + timedelta(minutes=i),
                )
            )
    events = [
        event("c1", "click", T0 + timedelta(hours=1), product="p1", rec="recommended_for_you-0"),
        event("c2", "click", T0 + timedelta(hours=1), product="p2", rec="recommended_for_you-2"),
        event("c3", "click", T0 + timedelta(hours=1), product="p3", rec="trending-0"),
        event(
            "a1", "add_to_cart", T0 + timedelta(hours=2), product="p1", rec="recommended_for_you-0"
        ),
        event(
            "b1",
            "purchase",
            T0 + timedelta(hours=3),
            product="p1",
            price=1001,
            quantity=3,
            order="o1",
        ),
        event(
            "b2",
            "purchase",
            T0 + timedelta(hours=3),
            product="p3",
            price=450,
            order="o2",
            rec="trending-0",
        ),
    ]
    await store.collection(at.EVENTS).insert_many([dict(e) for e in events])
    await at.attribute_events(store, events, now=T0)
    await store.collection(at.EXPOSURES).insert_many(
        [
            exposure.offer_exposure_document(
                exposure.ServedOffer(f"WELCOME-{i}", "welcome"),
                f"req-o{i}",
                "u1",
                None,
                2.0,
                None,
                T0,
            )
            for i in range(4)
        ]
    )
    await store.collection(at.REDEMPTIONS).insert_many(
        [
            {
                "code": "WELCOME-1",
                "campaign_id": "cmp-welcome",
                "strategy": "welcome",
                "user_id": "u1",
                "order_id": "o1",
                "amount": {"amount": 300, "currency": EUR},
                "redeemed_at": T0 + timedelta(hours=3),
                "released_at": None,
            },
            {  # released (order cancelled): not counted
                "code": "WELCOME-2",
                "campaign_id": "cmp-welcome",
                "strategy": "welcome",
                "user_id": "u2",
                "order_id": "o9",
                "amount": {"amount": 300, "currency": EUR},
                "redeemed_at": T0 + timedelta(hours=3),
                "released_at": T0 + timedelta(hours=5),
            },
        ]
    )


async def test_strategy_and_slot_performance(store: Store) -> None:
    await _performance_fixture(store)
    report = await at.strategy_performance(
        store, T0 - timedelta(hours=1), T0 + timedelta(days=1), currency=EUR
    )
    strategies = {r.key: r for r in report.by_strategy}
    slots = {r.key: r for r in report.by_slot}
    rfy = strategies["recommended_for_you"]
    assert (rfy.impressions, rfy.clicks, rfy.add_to_carts, rfy.purchases) == (10, 1, 1, 1)
    assert rfy.revenue == Money(3003, EUR)
    assert rfy.ctr == pytest.approx(0.1)
    assert rfy.add_to_cart_rate == pytest.approx(0.1)
    assert rfy.conversion_rate == pytest.approx(0.1)
    assert rfy.revenue_per_mille == Money(300300, EUR)
    trending = strategies["trending"]
    assert (trending.impressions, trending.clicks, trending.purchases) == (20, 2, 1)
    assert trending.revenue == Money(450, EUR)
    # 450 * 1000 / 20 = 22500 exactly; a half-even case: 1 minor unit over 2000 impressions.
    assert trending.revenue_per_mille == Money(22500, EUR)
    assert at.per_mille(Money(1, EUR), 2000) == Money(0, EUR)
    assert at.per_mille(Money(3, EUR), 2000) == Money(2, EUR)
    assert (slots["recommended_for_you"].impressions, slots["recommended_for_you"].clicks) == (
        20,
        2,
    )
    assert slots["recommended_for_you"].revenue == Money(3003, EUR)
    assert (slots["trending"].impressions, slots["trending"].purchases) == (10, 1)
    [coupon] = report.coupons
    assert (coupon.strategy, coupon.offers, coupon.redemptions) == ("welcome", 8, 1)
    assert coupon.discount == Money(300, EUR)
    assert coupon.revenue == Money(3003, EUR)
    assert coupon.redemption_rate == pytest.approx(1 / 8)
    # Nothing before the window.
    empty = await at.strategy_performance(
        store, T0 - timedelta(days=2), T0 - timedelta(days=1), currency=EUR
    )
    assert empty.by_strategy == () and empty.coupons == ()
    with pytest.raises(ValueError, match="'from' must be before 'to'"):
        await at.strategy_performance(store, T0, T0, currency=EUR)


PERFORMANCE = """
query($from: DateTime!, $to: DateTime!) {
  strategyPerformance(from: $from, to: $to) {
    currency
    strategies { name impressions clicks ctr addToCartRate conversionRate
                 revenue { amount currency } revenuePerThousandImpressions { amount currency } }
    slots { name impressions }
    couponStrategies { strategy offers redemptions discount { amount } revenue { amount } }
  }
}
"""


async def test_strategy_performance_through_graphql(
    graphql: Any, store: Store, storefront_key: str
) -> None:
    await _performance_fixture(store)
    window = {
        "from": (T0 - timedelta(hours=1)).isoformat(),
        "to": (T0 + timedelta(days=1)).isoformat(),
    }
    res = await graphql(PERFORMANCE, window)
    data = res["data"]["strategyPerformance"]
    assert data["currency"] == "EUR"
    first = data["strategies"][0]
    assert first["name"] == "recommended_for_you"
    assert first["revenue"] == {"amount": 3003, "currency": "EUR"}
    assert first["revenuePerThousandImpressions"] == {"amount": 300300, "currency": "EUR"}
    assert data["couponStrategies"][0]["redemptions"] == 1
    backwards = {"from": window["to"], "to": window["from"]}
    res = await graphql(PERFORMANCE, backwards)
    assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    res = await graphql(PERFORMANCE, window, key=storefront_key)
    assert res["errors"][0]["extensions"]["code"] == "FORBIDDEN"
