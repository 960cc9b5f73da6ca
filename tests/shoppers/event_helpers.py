"""Shared builders for the events, profiles and privacy tests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from shopfront.catalog.products import upsert_products
from shopfront.platform.store import Store

PRODUCTS: list[dict[str, Any]] = [
    {
        "id": "shoe-1",
        "title": "Trail shoe",
        "price": {"amount": 8999, "currency": "EUR"},
        "category_path": ["Shoes", "Trail"],
        "brand": "Stride",
        "tags": ["outdoor", "waterproof"],
        "stock": 5,
    },
    {
        "id": "shoe-2",
        "title": "Road shoe",
        "price": {"amount": 7999, "currency": "EUR"},
        "category_path": ["Shoes", "Road"],
        "brand": "Stride",
        "tags": ["running"],
        "stock": 5,
    },
    {
        "id": "sock.1",  # a dot: product ids become escaped keys inside the profile
        "title": "Wool socks",
        "price": {"amount": 1299, "currency": "EUR"},
        "category_path": ["Socks"],
        "brand": "Knit & Co.",
        "tags": ["wool"],
        "stock": 50,
    },
    {
        "id": "$cap",  # a dollar: never an operator or a field path
        "title": "Cap",
        "price": {"amount": 1999, "currency": "EUR"},
        "category_path": ["Accessories", "Hats"],
        "brand": "Topper",
        "tags": [],
        "stock": 3,
    },
]


async def seed_products(store: Store, extra: int = 0) -> list[str]:
    """The fixed products above plus ``extra`` generated ones; returns all ids."""
    generated = [
        {
            "id": f"g{i:03d}",
            "title": f"Generated {i}",
            "price": {"amount": 500 + 100 * i, "currency": "EUR"},
            "category_path": [f"Cat{i % 5}", f"Sub{i % 3}"],
            "brand": f"Brand{i % 4}",
            "tags": [f"tag{i % 6}"],
            "stock": 10,
        }
        for i in range(extra)
    ]
    results = await upsert_products(store, PRODUCTS + generated)
    assert all(r.status.value != "rejected" for r in results), results
    return [p["id"] for p in PRODUCTS + generated]


def at(minutes_ago: float, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(minutes=minutes_ago)


def ev(eid: str, kind: str = "view", /, **fields: Any) -> dict[str, Any]:
    """A raw event with sensible defaults: shopper u1, one minute ago, product shoe-1.
    A field given as None is left out."""
    raw: dict[str, Any] = {"event_id": eid, "type": kind, "timestamp": at(1)}
    if "session_id" not in fields:
        raw["user_id"] = "u1"
    if kind not in ("search",):
        raw["product_id"] = "shoe-1"
    if kind == "purchase":
        raw.update(price={"amount": 8999, "currency": "EUR"}, order_id="o-1")
    if kind == "search":
        raw["query"] = "trail shoes"
    if kind == "rating":
        raw["rating"] = 4
    if kind == "review":
        raw["review"] = "Comfortable."
    raw.update(fields)
    return {k: v for k, v in raw.items() if v is not None}


def walk_strings(value: Any) -> Iterator[str]:
    """Every string anywhere in a document (keys and values)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from walk_strings(v)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from walk_strings(item)
