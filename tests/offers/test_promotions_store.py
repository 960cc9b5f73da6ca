"""Stored promotions: validation on write, the per-instance book and its refresh, and the
catalog's nudge suggestions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shopfront.catalog import products as catalog
from shopfront.offers.contract import ProductScope
from shopfront.offers.promotions import (
    CatalogSuggester,
    PromotionBook,
    PromotionError,
    PromotionTypes,
    delete_promotion,
    list_promotions,
    upsert_promotion,
)
from shopfront.platform.config import Settings
from shopfront.platform.money import Money
from shopfront.platform.store import Store
from shopfront.shoppers.context import CartLine
from shopfront.shoppers.profile_view import Profile

from tests.plugins.promotions.kit import context

TYPES = PromotionTypes.builtin()


def ten_off(pid: str = "ten", **extra: Any) -> dict[str, Any]:
    return {
        "id": pid,
        "type": "order_discount",
        "title": "10% off",
        "params": {"discount": {"percent": "10"}},
        **extra,
    }


async def test_upsert_validates_and_replaces(store: Store, settings: Settings) -> None:
    stored = await upsert_promotion(store, TYPES, settings, ten_off(priority=5))
    assert stored.type == "order_discount" and stored.config["priority"] == 5
    created = stored.created_at
    again = await upsert_promotion(store, TYPES, settings, ten_off(title="Ten"))
    assert again.config["title"] == "Ten" and "priority" not in again.config
    assert again.created_at == created
    assert [p.id for p in await list_promotions(store)] == ["ten"]
    for bad, field in [
        ({**ten_off(), "type": "nope"}, "type"),
        ({**ten_off(), "id": "a b"}, "id"),
        ({**ten_off(), "params": {"discount": {"percent": "200"}}}, "params.discount.percent"),
        ({**ten_off(), "active": "yes"}, "active"),
    ]:
        with pytest.raises(PromotionError, match=f"^{field}"):
            await upsert_promotion(store, TYPES, settings, bad)
    assert await delete_promotion(store, "ten")
    assert not await delete_promotion(store, "ten")


async def test_a_change_applies_on_every_instance_after_the_refresh(
    store: Store, settings: Settings
) -> None:
    ctx = context()
    eager = PromotionBook(store, replace(settings, promotions_refresh_ms=0), TYPES)
    lazy = PromotionBook(store, replace(settings, promotions_refresh_ms=3_600_000), TYPES)
    assert await eager(ctx) == [] and await lazy(ctx) == []
    await upsert_promotion(store, TYPES, settings, ten_off())
    assert [p.terms.name for p in await eager(ctx)] == ["ten"]
    assert await lazy(ctx) == []  # still within its refresh interval
    lazy.invalidate()
    assert [p.terms.name for p in await lazy(ctx)] == ["ten"]
    await upsert_promotion(store, TYPES, settings, ten_off(active=False))
    assert await eager(ctx) == []


async def test_the_book_keeps_promotions_in_their_window(store: Store, settings: Settings) -> None:
    now = datetime.now(UTC)
    book = PromotionBook(store, replace(settings, promotions_refresh_ms=0), TYPES)
    window = {"starts_at": now + timedelta(days=1), "ends_at": now + timedelta(days=2)}
    await upsert_promotion(store, TYPES, settings, ten_off("later", conditions=window))
    assert await book(context(now=now)) == []
    inside = await book(context(now=now + timedelta(days=1, hours=1)))
    assert [p.terms.name for p in inside] == ["later"]


async def test_a_stored_promotion_that_no_longer_builds_is_skipped(
    store: Store, settings: Settings
) -> None:
    await upsert_promotion(store, TYPES, settings, ten_off("good"))
    await upsert_promotion(store, TYPES, settings, ten_off("broken"))
    await store.collection("promotions").update_one(
        {"id": "broken"}, {"$set": {"definition.params": {"discount": {}}}}
    )
    book = PromotionBook(store, settings, TYPES)
    assert [p.terms.name for p in await book(context())] == ["good"]


# -- nudge suggestions ---------------------------------------------------------------------


def item(
    pid: str, amount: int, category: list[str], currency: str = "EUR", **extra: Any
) -> dict[str, Any]:
    return {
        "id": pid,
        "title": pid,
        "price": {"amount": amount, "currency": currency},
        "category_path": category,
        "brand": "Knit",
        "stock": 5,
        **extra,
    }


@pytest.fixture
async def shelf(store: Store) -> Store:
    await catalog.upsert_products(
        store,
        [
            item("sock-a", 1300, ["Socks"]),
            item("sock-b", 1500, ["Socks"]),
            item("sock-out", 1250, ["Socks"], stock=0),
            item("sock-off", 1250, ["Socks"], active=False),
            item("bag", 1400, ["Bags"]),
            item("belt", 1210, ["Belts"]),
            item("pin", 200, ["Socks"]),
            item("usd", 1300, ["Socks"], currency="USD"),
        ],
    )
    return store


async def test_suggestions_complete_the_missing_amount(shelf: Store) -> None:
    suggest = CatalogSuggester(shelf)
    ctx = replace(context(), cart_lines=(CartLine("sock-b", 1),))
    found = await suggest(ctx, "free_shipping", Money(1200, "EUR"), ProductScope(), 3)
    assert found == ["belt", "sock-a", "bag"]  # in stock, EUR, >= 12.00, closest first
    socks = ProductScope(categories=frozenset({("Socks",)}))
    assert await suggest(ctx, "spend_threshold", Money(1200, "EUR"), socks, 3) == ["sock-a", "pin"]


async def test_suggestions_prefer_the_shoppers_favourite_categories(shelf: Store) -> None:
    fan = Profile("u1", datetime.now(UTC), category_affinities=(("Bags", 2.0), ("Socks", 1.0)))
    suggest = CatalogSuggester(shelf)
    found = await suggest(
        context(profile=fan), "free_shipping", Money(1200, "EUR"), ProductScope(), 3
    )
    assert found == ["bag", "sock-a", "sock-b"]
    anonymous = await suggest(
        context(profile=fan, personalized=False),
        "free_shipping",
        Money(1200, "EUR"),
        ProductScope(),
        3,
    )
    assert anonymous == ["belt", "sock-a", "bag"]


async def test_demo_promotions_seed_twice(store: Store, settings: Settings) -> None:
    from shopfront.offers.promotions import DEMO_PROMOTIONS, seed_demo_promotions

    await seed_demo_promotions(store, settings)
    await seed_demo_promotions(store, settings)
    book = PromotionBook(store, settings, TYPES)
    assert sorted(p.terms.name for p in await book(context())) == sorted(
        p["id"] for p in DEMO_PROMOTIONS
    )
    assert await store.collection("coupon_codes").count_documents({"code": "SUMMER10"}) == 1
