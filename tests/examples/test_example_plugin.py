"""The example plugin package as a merchant would install it (`pip install -e
examples/shopfront-plugin-example`; `make test` does): discovered through its entry point,
configured from the config file, left out and named when it fails, kept out by the deny list."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest
from shopfront.catalog.products import upsert_products
from shopfront.platform.store import Store
from shopfront.testing import StorefrontClientFactory

from tests.plugin_doubles import product_doc

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
    "sessionId": "5e0a3c1d-7b2f-4e8a-9c6d-1f4b8a2e7c90",  # unguessable, as a browser sends
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
    assert config["example_brand_percent"] == {
        "brand": "Stride",
        "percent": 20,
        "priority": 100,
    }
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


async def test_isolated_when_it_fails(
    catalog: None, storefront_client: StorefrontClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shopfront_plugin_example import BrandPercentOff, StaffPicks, WelcomeCoupon

    async def broken(self: object, *args: object) -> None:
        raise RuntimeError(f"{type(self).__name__} is broken")

    # The plugin itself carries no switch for this: its strategies break here, in the test.
    monkeypatch.setattr(StaffPicks, "recommend", broken)
    monkeypatch.setattr(WelcomeCoupon, "offers", broken)
    monkeypatch.setattr(BrandPercentOff, "apply", broken)
    sf = await storefront_client(
        config=CONFIG, plugins_entry_points=True, plugins_allow=("example",)
    )
    out = await sf.query(INPUT)
    assert {d["strategy"]: d["reason"] for d in out["degraded"]} == {
        "example_staff_picks": "error: RuntimeError",
        "example_welcome": "error: RuntimeError",
        "example_brand_percent": "error: RuntimeError",
    }
    assert out["slots"][0]["items"] == [] and out["coupons"] == []
    cart = out["cart"]  # a failing promotion gives no discount, never a wrong one
    assert cart["discountTotal"]["amount"] == 0
    assert cart["total"]["amount"] == cart["subtotal"]["amount"] + cart["shipping"]["amount"]
    assert cart["notApplied"] == [
        {
            "name": "example_brand_percent",
            "reason": "temporarily unavailable",
            "code": "UNAVAILABLE",
        }
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
