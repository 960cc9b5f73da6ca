"""Every part left out of a storefront answer is named, with its reason, in the request's log
line and counted in ``shopfront_degraded_parts_total`` by strategy and reason."""

from __future__ import annotations

import json
import logging

import pytest
from shopfront.catalog.products import upsert_products
from shopfront.offers.contract import CouponStrategySpec
from shopfront.platform.logs import JsonFormatter
from shopfront.platform.store import Store
from shopfront.recommend.contract import RecommenderSpec
from shopfront.testing import StorefrontClientFactory

from tests.plugin_doubles import (
    Raising,
    RaisingCoupon,
    Sleeping,
    SleepProbe,
    SpecPlugin,
    list_recommender,
    product_doc,
)


def _metric(text: str, strategy: str, reason: str) -> float:
    prefix = f'shopfront_degraded_parts_total{{reason="{reason}",strategy="{strategy}"}} '
    found = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(found[0][len(prefix) :]) if found else 0.0


async def test_failing_late_and_missing_strategies_reach_the_log_line_and_the_metric(
    store: Store, storefront_client: StorefrontClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    await upsert_products(store, [product_doc(f"p{i}") for i in range(1, 4)])
    probe = SleepProbe()
    plugin = SpecPlugin(
        recommenders=[
            list_recommender("trending", ["p1", "p2"]),
            RecommenderSpec("raiser", Raising, "raises"),
            RecommenderSpec("sleeper", lambda s: Sleeping(s, probe), "", {"sleep_s": 30.0}),
        ],
        coupons=[CouponStrategySpec("coupon_down", RaisingCoupon, "")],
    )
    config = {"strategies": {"trending": {"timeout_ms": 2000}, "coupon_down": {}}}
    sf = await storefront_client([("mixed", plugin)], config=config, strategy_timeout_ms=100)
    slots = [
        {"name": "top", "strategy": "trending"},
        {"name": "broken", "strategy": "raiser"},
        {"name": "late", "strategy": "sleeper"},
        {"name": "made_up", "strategy": "no_such_strategy"},
    ]
    with caplog.at_level(logging.INFO, logger="shopfront.request"):
        for _ in range(2):
            out = await sf.query({"userId": "u1", "page": "HOME", "slots": slots})
    expected = [
        {"strategy": "no_such_strategy", "reason": "not loaded"},
        {"strategy": "coupon_down", "reason": "error: KeyError"},
        {"strategy": "raiser", "reason": "error: RuntimeError"},
        {"strategy": "sleeper", "reason": "timeout after 100 ms"},
    ]
    key = lambda d: d["strategy"]  # noqa: E731
    assert sorted(out["degraded"], key=key) == sorted(expected, key=key)

    lines = [
        json.loads(JsonFormatter().format(r))
        for r in caplog.records
        if r.name == "shopfront.request"
    ]
    assert len(lines) == 2
    for line in lines:
        assert sorted(line["degraded"], key=key) == sorted(expected, key=key)

    text = (await sf.http.get("/metrics")).text
    assert _metric(text, "raiser", "error") == 2
    assert _metric(text, "coupon_down", "error") == 2
    assert _metric(text, "sleeper", "timeout") == 2
    # a name the client made up is counted, but never becomes a label of its own
    assert _metric(text, "(unknown)", "not loaded") == 2
    assert "no_such_strategy" not in text
    assert _metric(text, "trending", "error") == 0


async def test_an_answer_with_nothing_left_out_logs_and_counts_nothing(
    store: Store, storefront_client: StorefrontClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    await upsert_products(store, [product_doc("p1")])
    plugin = SpecPlugin(recommenders=[list_recommender("trending", ["p1"])])
    sf = await storefront_client([("fine", plugin)])
    with caplog.at_level(logging.INFO, logger="shopfront.request"):
        out = await sf.query({"userId": "u1", "page": "HOME", "slots": [{"name": "trending"}]})
    assert out["degraded"] == []
    (record,) = [r for r in caplog.records if r.name == "shopfront.request"]
    assert json.loads(JsonFormatter().format(record))["degraded"] == []
    assert "shopfront_degraded_parts_total{" not in (await sf.http.get("/metrics")).text
