"""The example plugin package as a merchant would install it (`pip install -e
examples/shopfront-plugin-example`; `make test` does): discovered through its entry point,
configured from the config file, kept serving beside a failing plugin, kept out by the deny
list."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest
from shopfront.catalog.products import upsert_products
from shopfront.offers.contract import CouponStrategySpec, PromotionSpec
from shopfront.platform.store import Store
from shopfront.recommend.contract import RecommenderSpec
from shopfront.testing import StorefrontClientFactory

from tests.plugin_doubles import (
    Raising,
    RaisingCoupon,
    RaisingPromotion,
    SpecPlugin,
    product_doc,
)

# Sessions sent with a storefront key must be unguessable (a UUIDv4).
SESSION = "0f8fad5b-d9cb-469f-a165-70867728950e"


CONFIG: dict[str, Any] = {
    "strategies": {
        "example_staff_picks": {
            "enabled": True,
            "product_ids": ["p2", "p3"],
            "reason": "Our favourite",
        },
        "example_brand_percent": {"enabled": True, "brand": "Stride", "percent": 20},
        "example_welcome": {"enabled": True, "code": "env:EXAMPLE_WELCOME_CODE"},
    }
}
INPUT = {
    "sessionId": SESSION,
    "page": "CART",
    "cart": {"lines": [{"productId": "p1", "quantity": 1}]},
    "slots": [{"name": "picks", "strategy": "example_staff_picks"}],
}
PLUGINS = "{ plugins { name source distribution version strategies { name config } } }"


@pytest.fixture(autouse=True)
def installed(monkeypatch: pytest.MonkeyPatch) -> None:
    names = {ep.name for ep in importlib.metadata.entry_points(group="shopfront")}
    if "example" not in names:
        pytest.fail(
            "the example plugin is not installed: pip install -e examples/shopfront-plugin-example"
        )
    monkeypatch.setenv("EXAMPLE_WELCOME_CODE", "HELLO-EXAMPLE")


@pytest.fixture
async def catalog(store: Store) -> None:
    await upsert_products(
        store, [product_doc("p1"), product_doc("p2"), product_doc("p3", brand="Other")]
    )


async def plugins(sf: Any, merchant_key: str) -> list[dict[str, Any]]:
    resp = await sf.http.post(
        "/graphql", json={"query": PLUGINS}, headers={"authorization": f"Bearer {merchant_key}"}
    )
    result: list[dict[str, Any]] = resp.json()["data"]["plugins"]
    return result


async def test_discovered_and_configured(
    catalog: None, storefront_client: StorefrontClientFactory, merchant_key: str
) -> None:
    sf = await storefront_client(
        config=CONFIG, plugins_entry_points=True, plugins_allow=("example",)
    )
    [example] = await plugins(sf, merchant_key)
    assert example["name"] == "example" and example["source"] == "ENTRY_POINT"
    assert example["distribution"].replace("_", "-") == "shopfront-plugin-example"
    assert example["version"] == "0.1.0"
    config = {s["name"]: s["config"] for s in example["strategies"]}
    assert config["example_brand_percent"] == {"brand": "Stride", "percent": 20, "priority": 100}
    assert config["example_welcome"]["code"] == "***"

    out = await sf.query(INPUT)
    assert out["degraded"] == []
    [picks] = out["slots"]
    assert [i["product"]["id"] for i in picks["items"]] == ["p2", "p3"]
    assert picks["items"][0]["reasons"] == [
        {"code": "STAFF_PICK", "text": "Our favourite", "strategy": "example_staff_picks"}
    ]
    assert [c["code"] for c in out["coupons"]] == ["HELLO-EXAMPLE"]
    assert out["cart"]["discountTotal"] == {"amount": 200, "currency": "EUR"}


# A plugin that fails at everything (this suite's own doubles, not a switch in the example):
# the installed example keeps serving beside it, and the failures are named.
FAILING = SpecPlugin(
    recommenders=[RecommenderSpec("broken_picks", Raising, "raises")],
    coupons=[CouponStrategySpec("broken_coupon", RaisingCoupon, "")],
    promotions=[PromotionSpec("broken_promo", RaisingPromotion, "", {"percent": 0, "priority": 1})],
)


async def test_isolated_from_a_failing_plugin(
    catalog: None, storefront_client: StorefrontClientFactory
) -> None:
    sf = await storefront_client(
        [("broken", FAILING)],
        config=CONFIG,
        plugins_entry_points=True,
        plugins_allow=("example", "broken"),
    )
    slots = [*INPUT["slots"], {"name": "broken", "strategy": "broken_picks"}]
    out = await sf.query({**INPUT, "slots": slots})
    assert {d["strategy"]: d["reason"] for d in out["degraded"]} == {
        "broken_picks": "error: RuntimeError",
        "broken_coupon": "error: KeyError",
        "broken_promo": "error: ZeroDivisionError",
    }
    picks, broken = out["slots"]
    assert [i["product"]["id"] for i in picks["items"]] == ["p2", "p3"]
    assert broken["items"] == []
    assert [c["code"] for c in out["coupons"]] == ["HELLO-EXAMPLE"]
    cart = out["cart"]  # the failing promotion gives nothing; the example's still applies
    assert cart["discountTotal"] == {"amount": 200, "currency": "EUR"}
    assert cart["notApplied"] == [
        {"name": "broken_promo", "reason": "temporarily unavailable", "code": "UNAVAILABLE"}
    ]


async def test_blocked_by_the_deny_list(
    catalog: None, storefront_client: StorefrontClientFactory, merchant_key: str
) -> None:
    sf = await storefront_client(
        config=CONFIG,
        plugins_entry_points=True,
        plugins_allow=("example",),
        plugins_deny=("example",),  # the deny list wins
    )
    assert await plugins(sf, merchant_key) == []
    assert sf.host.skipped["example"] == "denied"
    out = await sf.query(INPUT)
    assert out["degraded"] == [{"strategy": "example_staff_picks", "reason": "not loaded"}]
