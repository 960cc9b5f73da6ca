"""The merchant `plugins` query: what is loaded, its hooks, config (secrets hidden), health."""

from __future__ import annotations

import uuid

import pytest
from shopfront.offers.contract import CouponStrategySpec
from shopfront.recommend.contract import RecommenderSpec
from shopfront.testing import StorefrontClientFactory

from tests.plugin_doubles import FixedCoupon, Raising, SpecPlugin, list_recommender

PLUGINS_QUERY = """
{ plugins { name source distribution version hooks config
            strategies { kind name description enabled personalized timeoutMs config
                         health { calls failures timeouts shortCircuited breakerState
                                  consecutiveFailures breakerOpened lastError } } } }
"""


async def test_plugins_lists_strategies_config_and_health(
    storefront_client: StorefrontClientFactory, merchant_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_COUPON_SECRET", "hunter2")
    plugin = SpecPlugin(
        recommenders=[
            list_recommender("listed", ["p1"]),
            RecommenderSpec("broken", Raising, "always raises"),
        ],
        coupons=[
            CouponStrategySpec(
                "vip", FixedCoupon, "VIP code", {"code": "", "title": "VIP"}, secrets=("code",)
            )
        ],
    )
    config = {
        "plugins": {"shop": {"region": "eu"}},
        "strategies": {"vip": {"code": "env:TEST_COUPON_SECRET"}, "listed": {"timeout_ms": 90}},
    }
    sf = await storefront_client([("shop", plugin)], config=config)
    out = await sf.query(
        {
            "sessionId": str(uuid.uuid4()),
            "page": "HOME",
            "slots": [{"name": "a", "strategy": "broken"}],
        },
        "degraded { strategy reason } coupons { code }",
    )
    assert out["coupons"] == [{"code": "hunter2"}]  # the secret reached the strategy ...
    resp = await sf.http.post(
        "/graphql",
        json={"query": PLUGINS_QUERY},
        headers={"authorization": f"Bearer {merchant_key}"},
    )
    [shop] = resp.json()["data"]["plugins"]
    assert (shop["name"], shop["source"], shop["distribution"], shop["version"]) == (
        "shop",
        "REGISTERED",
        None,
        None,
    )
    assert shop["hooks"] == [
        "register_coupon_strategies",
        "register_promotions",
        "register_recommenders",
    ]
    assert shop["config"] == {"region": "eu"}
    strategies = {s["name"]: s for s in shop["strategies"]}
    assert strategies["vip"]["config"] == {"code": "***", "title": "VIP"}  # ... but never shows
    assert strategies["vip"]["kind"] == "COUPON"
    assert strategies["listed"]["timeoutMs"] == 90
    assert strategies["listed"]["config"] == {"ids": ["p1"]}
    broken = strategies["broken"]
    assert broken["description"] == "always raises"
    assert broken["health"] == {
        "calls": 1,
        "failures": 1,
        "timeouts": 0,
        "shortCircuited": 0,
        "breakerState": "CLOSED",
        "consecutiveFailures": 1,
        "breakerOpened": 0,
        "lastError": "error: RuntimeError",
    }


async def test_plugins_needs_a_merchant_key(storefront_client: StorefrontClientFactory) -> None:
    sf = await storefront_client()
    resp = await sf.http.post(
        "/graphql", json={"query": PLUGINS_QUERY}, headers={"authorization": f"Bearer {sf.key}"}
    )
    assert resp.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
