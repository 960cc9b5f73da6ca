"""Small hand-made catalogs, events and requests for the recommender tests."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from shopfront.catalog.products import Product
from shopfront.platform.config import Settings
from shopfront.platform.money import Money
from shopfront.platform.strategy_setup import StrategySetup
from shopfront.recommend.contract import Slot, TrainingData
from shopfront.shoppers.context import CartLine, PageType, RequestContext
from shopfront.shoppers.profile_view import Profile

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def product(
    pid: str,
    title: str | None = None,
    *,
    category: tuple[str, ...] = ("Shoes", "Running"),
    brand: str = "Acme",
    tags: tuple[str, ...] = (),
    price: int = 5000,
    stock: int = 10,
    active: bool = True,
    description: str = "",
    attributes: Mapping[str, str] | None = None,
    created_at: datetime | None = None,
) -> Product:
    return Product(
        id=pid,
        title=title or pid,
        price=Money(price, "EUR"),
        description=description,
        category_path=category,
        brand=brand,
        tags=tags,
        stock=stock,
        active=active,
        attributes=dict(attributes or {}),
        created_at=created_at,
    )


_counter = 0


def event(
    kind: str,
    user: str | None,
    pid: str | None = None,
    *,
    at: datetime | None = None,
    days_ago: float = 1.0,
    order: str | None = None,
    session: str | None = None,
    quantity: int = 1,
    rating: int | None = None,
    query: str | None = None,
    review: str | None = None,
) -> dict[str, Any]:
    global _counter
    _counter += 1
    return {
        "event_id": f"e{_counter}",
        "type": kind,
        "user_id": user,
        "session_id": session,
        "timestamp": at or NOW - timedelta(days=days_ago),
        "product_id": pid,
        "quantity": quantity,
        "order_id": order,
        "rating": rating,
        "query": query,
        "review": review,
    }


def training(products: Sequence[Product], events: Sequence[Mapping[str, Any]]) -> TrainingData:
    return TrainingData(
        products=list(products),
        events=sorted(events, key=lambda e: e["timestamp"]),
        window_start=NOW - timedelta(days=365),
        window_end=NOW,
    )


class MemoryCatalog:
    """A `CatalogReader` over a dict (the real one reads MongoDB in batches)."""

    def __init__(self, products: Sequence[Product]) -> None:
        self.products = {p.id: p for p in products}
        self.calls = 0

    async def get_many(self, ids: Sequence[str]) -> Mapping[str, Product]:
        self.calls += 1
        return {pid: self.products[pid] for pid in ids if pid in self.products}


def setup(name: str, config: Mapping[str, Any] | None = None) -> StrategySetup:
    return StrategySetup(
        name=name,
        config=dict(config or {}),
        settings=Settings(),
        store=None,  # type: ignore[arg-type]  # these strategies never touch the store
        log=logging.getLogger(f"test.{name}"),
    )


def request(
    catalog: Sequence[Product],
    *,
    page: PageType = PageType.HOME,
    product_id: str | None = None,
    profile: Profile | None = None,
    cart: Sequence[str] = (),
    session_recent: Sequence[str] = (),
    personalized: bool = True,
    category_path: tuple[str, ...] | None = None,
    now: datetime = NOW,
) -> RequestContext:
    by_id = {p.id: p for p in catalog}
    page_products = {pid: by_id[pid] for pid in [product_id, *cart] if pid and pid in by_id}
    return RequestContext(
        request_id="r1",
        now=now,
        page=page,
        currency="EUR",
        catalog=MemoryCatalog(catalog),
        user_id=profile.user_id if profile else None,
        session_id="s1",
        product_id=product_id,
        category_path=category_path,
        cart_lines=tuple(CartLine(pid, 1) for pid in cart),
        profile=profile,
        personalized=personalized,
        session_recent=tuple(session_recent),
        products=page_products,
    )


def slot(*strategies: str, limit: int = 10, **kwargs: Any) -> Slot:
    return Slot(name="test", title="For you", strategies=strategies, limit=limit, **kwargs)


def ids(candidates: Sequence[Any]) -> list[str]:
    return [c.product_id for c in candidates]
