"""The example plugin's own tests, written the way a merchant would test a plugin: contract
checks on each strategy, then the plugin inside a real storefront."""

from __future__ import annotations

from typing import Any

import pytest
import shopfront_plugin_example
from shopfront import ConfigError, Money, PageType, Product, Profile, Slot, Store, upsert_products
from shopfront.testing import (
    PluginHostFactory,
    StorefrontClientFactory,
    check_coupon_strategy,
    check_promotion,
    check_recommender,
    make_context,
)

CONFIG: dict[str, Any] = {
    "strategies": {
        "example_staff_picks": {"enabled": True, "product_ids": ["p1", "p2", "p3", "p4"]},
        "example_welcome": {"enabled": True},
        "example_brand_percent": {"enabled": True, "brand": "Stride", "percent": 15},
    }
}


def product(pid: str, brand: str = "Stride", price: int = 2000, **kw: Any) -> Product:
    return Product(id=pid, title=f"Shoe {pid}", price=Money(price, "EUR"), brand=brand, **kw)


PRODUCTS = [
    product("p1", stock=3),
    product("p2", stock=0),  # out of stock: never picked
    product("p3", brand="Other", stock=9),
    product("p4", stock=1, active=False),  # inactive: never picked
]


async def test_staff_picks_keeps_the_recommender_contract(
    plugin_host_with: PluginHostFactory,
) -> None:
    host = await plugin_host_with(shopfront_plugin_example, name="example", config=CONFIG)
    ctx = make_context(PRODUCTS)
    slot = Slot("picks", "Staff picks", ("example_staff_picks",), limit=5)
    # Run the check where the strategy lives: on its plugin's own loop.
    found = await host.run_on_strategy(
        "example_staff_picks", lambda s: check_recommender(s, ctx, slot)
    )
    assert [c.product_id for c in found] == ["p1", "p3"]
    assert found[0].reasons[0].text == "Picked by our staff"


async def test_staff_picks_skips_what_is_in_the_cart(plugin_host_with: PluginHostFactory) -> None:
    host = await plugin_host_with(shopfront_plugin_example, name="example", config=CONFIG)
    ctx = make_context(PRODUCTS, cart=[("p1", 1)])
    slot = Slot("picks", "Staff picks", ("example_staff_picks",))
    found = await host.run_on_strategy(
        "example_staff_picks", lambda s: check_recommender(s, ctx, slot)
    )
    assert [c.product_id for c in found] == ["p3"]


async def test_welcome_coupon_only_for_shoppers_without_orders(
    plugin_host_with: PluginHostFactory,
) -> None:
    host = await plugin_host_with(shopfront_plugin_example, name="example", config=CONFIG)
    new = make_context(PRODUCTS)
    [offer] = await host.run_on_strategy("example_welcome", lambda s: check_coupon_strategy(s, new))
    assert offer.code == "WELCOME10" and offer.expires_at is not None
    profile = Profile(user_id="shopper-1", as_of=new.now, orders=2)
    loyal = make_context(PRODUCTS, profile=profile)
    assert (
        await host.run_on_strategy("example_welcome", lambda s: check_coupon_strategy(s, loyal))
        == ()
    )


async def test_brand_promotion_discounts_only_its_brand(
    plugin_host_with: PluginHostFactory,
) -> None:
    host = await plugin_host_with(shopfront_plugin_example, name="example", config=CONFIG)
    ctx = make_context(PRODUCTS, cart=[("p1", 2), ("p3", 1)])
    outcome = await host.run_on_strategy("example_brand_percent", lambda s: check_promotion(s, ctx))
    assert outcome.applied and dict(outcome.line_discounts) == {0: 600}  # 15% of 2 x 20.00
    other = make_context(PRODUCTS, cart=[("p3", 1)])
    outcome = await host.run_on_strategy(
        "example_brand_percent", lambda s: check_promotion(s, other)
    )
    assert not outcome.applied and outcome.nudge is not None


async def test_bad_config_stops_start_up_naming_the_key(
    plugin_host_with: PluginHostFactory,
) -> None:
    with pytest.raises(
        ConfigError, match=r"example_brand_percent.*'percent': must be at most 100, got 150"
    ):
        await plugin_host_with(
            shopfront_plugin_example,
            name="example",
            config={
                "strategies": {
                    "example_brand_percent": {"enabled": True, "brand": "X", "percent": 150}
                }
            },
        )


async def test_installing_it_changes_nothing_until_configured(
    plugin_host_with: PluginHostFactory,
) -> None:
    host = await plugin_host_with(shopfront_plugin_example, name="example")
    assert [s.enabled for s in host.report()[0].strategies] == [False, False, False]
    assert host.coupon_strategies() == [] and host.promotions() == []


async def test_the_plugin_in_a_storefront(
    store: Store, storefront_client: StorefrontClientFactory
) -> None:
    await upsert_products(
        store,
        [
            {
                "id": p.id,
                "title": p.title,
                "price": p.price.to_doc(),
                "brand": p.brand,
                "stock": p.stock,
                "active": p.active,
            }
            for p in PRODUCTS
        ],
    )
    sf = await storefront_client([("example", shopfront_plugin_example)], config=CONFIG)
    out = await sf.query(
        {
            "userId": "u1",
            "page": PageType.CART.value,
            "cart": {"lines": [{"productId": "p1", "quantity": 1}]},
            "slots": [{"name": "picks", "strategy": "example_staff_picks"}],
        }
    )
    assert out["degraded"] == []
    assert [i["product"]["id"] for i in out["slots"][0]["items"]] == ["p3"]
    assert [c["code"] for c in out["coupons"]] == ["WELCOME10"]
    assert out["cart"]["appliedPromotions"] == [
        {
            "name": "example_brand_percent",
            "title": "15% off Stride",
            "amount": {"amount": 300, "currency": "EUR"},
        }
    ]
