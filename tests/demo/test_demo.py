"""The demo data set: deterministic, varied, valid, and shaped like real shopper behaviour."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shopfront.catalog import products as catalog
from shopfront.demo.data import (
    EVENT_FIELDS,
    HISTORY_DAYS,
    REPEAT_CATEGORIES,
    category_key,
    generate_catalog,
    generate_history,
    seed_demo,
)
from shopfront.platform.config import Settings
from shopfront.platform.store import Store
from shopfront.platform.vocabulary import EVENT_TYPES

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def products() -> list[dict[str, Any]]:
    return generate_catalog()


@pytest.fixture(scope="module")
def history(products: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return generate_history(products, now=NOW)


def test_catalog_is_deterministic_per_seed(products: list[dict[str, Any]]) -> None:
    assert generate_catalog(7) == products
    assert generate_catalog(8) != products


def test_catalog_breadth(products: list[dict[str, Any]]) -> None:
    assert len(products) >= 500
    assert len({p["id"] for p in products}) == len(products)
    assert len({p["title"] for p in products}) == len(products)
    categories = {tuple(p["category_path"]) for p in products}
    assert len(categories) >= 8
    assert all(len(path) == 2 for path in categories)
    assert len({p["brand"] for p in products}) >= 30
    assert {"Grocery > Coffee", "Beauty > Skincare"} <= set(REPEAT_CATEGORIES)
    assert {category_key(path) for path in categories} >= set(REPEAT_CATEGORIES)


def test_catalog_is_plausible(products: list[dict[str, Any]]) -> None:
    for p in products:
        assert p["price"]["currency"] == "EUR"
        assert 100 <= p["price"]["amount"] <= 60_000, p
        assert p["description"] and p["tags"] and p["attributes"]
        assert p["image_url"] == f"/demo-images/{p['id']}.svg"
    sold_out = sum(p["stock"] == 0 for p in products)
    inactive = sum(not p["active"] for p in products)
    assert 0 < sold_out < len(products) // 5
    assert 0 < inactive <= 20
    # Coffee is cheaper than headphones: prices follow the category.
    mean = defaultdict(list)
    for p in products:
        mean[category_key(p["category_path"])].append(p["price"]["amount"])
    avg = {k: sum(v) / len(v) for k, v in mean.items()}
    assert avg["Grocery > Coffee"] < avg["Electronics > Headphones"]


def test_every_demo_product_validates(products: list[dict[str, Any]]) -> None:
    for raw in products:
        product = catalog.validate_product(raw)
        assert product.to_doc() == raw


def test_history_is_deterministic(
    products: list[dict[str, Any]], history: list[dict[str, Any]]
) -> None:
    assert generate_history(products, now=NOW) == history
    assert generate_history(products, seed=8, now=NOW) != history
    later = generate_history(products, now=NOW + timedelta(days=1))
    assert [e["timestamp"] - timedelta(days=1) for e in later] == [e["timestamp"] for e in history]


def test_history_event_contract(
    products: list[dict[str, Any]], history: list[dict[str, Any]]
) -> None:
    assert 10_000 <= len(history) <= 15_000
    ids = {p["id"] for p in products}
    assert len({e["event_id"] for e in history}) == len(history)
    assert [e["timestamp"] for e in history] == sorted(e["timestamp"] for e in history)
    earliest = NOW - timedelta(days=HISTORY_DAYS)
    for e in history:
        assert set(e) == set(EVENT_FIELDS)
        assert e["type"] in EVENT_TYPES
        assert isinstance(e["event_id"], str)
        assert e["timestamp"].utcoffset() == timedelta(0)
        assert earliest <= e["timestamp"] <= NOW
        assert e["recommendation_id"] is None and e["position"] is None
        assert isinstance(e["page_type"], str)
        if e["type"] == "search":
            assert isinstance(e["query"], str) and e["query"]
            assert e["product_id"] is None
        else:
            assert e["product_id"] in ids
        if e["type"] == "purchase":
            assert isinstance(e["order_id"], str)
            assert isinstance(e["quantity"], int) and e["quantity"] >= 1
            assert isinstance(e["price"]["amount"], int) and e["price"]["amount"] > 0
            assert e["price"]["currency"] == "EUR"
        else:
            assert e["order_id"] is None and e["price"] is None
        if e["type"] == "rating":
            assert e["rating"] in range(1, 6)
        else:
            assert e["rating"] is None
        assert (e["type"] == "review") == isinstance(e["review"], str)
    types = Counter(e["type"] for e in history)
    expected = set(EVENT_TYPES) - {"impression"}  # impressions come from served recommendations
    assert set(types) == expected
    users = {e["user_id"] for e in history}
    assert users == {f"demo-{n:04d}" for n in range(1, 301)}


def test_orders_group_lines_and_consumables_are_bought_again(
    products: list[dict[str, Any]], history: list[dict[str, Any]]
) -> None:
    by_id = {p["id"]: p for p in products}
    lines_per_order = Counter(e["order_id"] for e in history if e["type"] == "purchase")
    assert any(n >= 2 for n in lines_per_order.values())
    repeat_orders: dict[tuple[str, str], set[str]] = defaultdict(set)
    for e in history:
        product = by_id[e["product_id"]] if e["product_id"] else None
        if (
            e["type"] == "purchase"
            and product is not None
            and category_key(product["category_path"]) in REPEAT_CATEGORIES
        ):
            repeat_orders[(e["user_id"], e["product_id"])].add(e["order_id"])
    rebuyers = {user for (user, _), orders in repeat_orders.items() if len(orders) >= 3}
    assert len(rebuyers) >= 30


def test_shoppers_differ(products: list[dict[str, Any]], history: list[dict[str, Any]]) -> None:
    by_id = {p["id"]: p for p in products}
    views: dict[str, Counter[str]] = defaultdict(Counter)
    for e in history:
        if e["type"] == "view":
            views[e["user_id"]][category_key(by_id[e["product_id"]]["category_path"])] += 1
    favourite = {user: c.most_common(1)[0][0] for user, c in views.items()}
    # Every category is somebody's favourite, and no category is everybody's.
    spread = Counter(favourite.values())
    assert len(spread) >= 8
    assert max(spread.values()) < len(favourite) / 4
    # Personas are focused: most of a shopper's views fall in their favourite category.
    focus = [c.most_common(1)[0][1] / c.total() for c in views.values()]
    assert sum(focus) / len(focus) > 0.5


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    now=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_any_seed_gives_valid_data(seed: int, now: datetime) -> None:
    products = generate_catalog(seed)
    for raw in products:
        catalog.validate_product(raw)
    events = generate_history(products, n_shoppers=5, seed=seed, now=now)
    assert events
    for e in events:
        assert set(e) == set(EVENT_FIELDS)
        assert now - timedelta(days=HISTORY_DAYS) <= e["timestamp"] <= now


def test_naive_now_is_refused(products: list[dict[str, Any]]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_history(products, n_shoppers=1, now=datetime(2025, 1, 1))


async def test_seed_demo_writes_the_catalog_idempotently(store: Store, settings: Settings) -> None:
    first = await seed_demo(store, settings, shoppers=5)
    assert (first.products_created, first.products_updated) == (500, 0)
    assert (first.categories, first.brands) == (12, 38)
    assert first.shoppers == 5 and first.events_accepted > 0 and first.events_rejected == 0
    again = await seed_demo(store, settings, shoppers=5)
    assert (again.products_created, again.products_updated) == (0, 500)
    assert again.events_accepted == 0  # the same history again: every event a duplicate
    assert await store.products.count_documents({}) == 500
    stored = await catalog.get_product(store, "sku-0001")
    assert stored is not None
    assert stored.to_doc() == generate_catalog()[0]
