"""Building blocks for promotion tests: products, carts, contexts and built promotions."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from shopfront.catalog.products import Product
from shopfront.offers.contract import PricedCart, Promotion
from shopfront.offers.pricing import NudgePolicy, NudgeSuggester, base_cart, price_cart
from shopfront.platform.config import Settings
from shopfront.platform.money import Money
from shopfront.platform.store import Store
from shopfront.platform.strategy_setup import StrategySetup
from shopfront.plugins.promotions import PROMOTION_TYPES, promotion_stacking
from shopfront.shoppers.context import CartLine, PageType, RequestContext
from shopfront.shoppers.profile_view import Profile

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
TYPES = {spec.name: spec for spec in PROMOTION_TYPES}


def eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


def product(
    pid: str,
    price: int,
    category: Sequence[str] = ("Shoes",),
    brand: str = "Stride",
    currency: str = "EUR",
) -> Product:
    return Product(
        pid,
        f"Product {pid}",
        Money(price, currency),
        category_path=tuple(category),
        brand=brand,
        stock=10,
    )


class NoCatalog:
    async def get_many(self, ids: Sequence[str]) -> Mapping[str, Product]:
        return {}


def context(
    products: Mapping[str, Product] | None = None,
    *,
    profile: Profile | None = None,
    channel: str = "",
    now: datetime = NOW,
    personalized: bool = True,
    user_id: str | None = None,
) -> RequestContext:
    return RequestContext(
        request_id="test",
        now=now,
        page=PageType.CART,
        currency="EUR",
        catalog=NoCatalog(),
        user_id=user_id,
        profile=profile,
        personalized=personalized,
        products=dict(products or {}),
        channel=channel,
    )


def build(kind: str, name: str, config: Mapping[str, Any]) -> Promotion:
    """A promotion of a built-in type from its definition."""
    setup = StrategySetup(
        name=name,
        config=config,
        settings=Settings(),
        store=cast(Store, None),  # the built-in types never touch the store
        log=logging.getLogger("test"),
    )
    built = TYPES[kind].factory(setup)
    assert isinstance(built, Promotion)
    return built


def lines_of(*items: tuple[str, int]) -> list[CartLine]:
    return [CartLine(pid, qty) for pid, qty in items]


async def price(
    products: Mapping[str, Product],
    lines: Sequence[CartLine],
    promotions: Sequence[Promotion],
    *,
    shipping: int = 495,
    ctx: RequestContext | None = None,
    nudges: NudgePolicy | None = None,
    suggest: NudgeSuggester | None = None,
) -> PricedCart:
    return await price_cart(
        ctx or context(products),
        lines,
        products,
        promotions=promotions,
        stacking=promotion_stacking,
        shipping=Money(shipping, "EUR"),
        nudges=nudges,
        suggest=suggest,
    )


async def alone(
    promotion: Promotion,
    products: Mapping[str, Product],
    lines: Sequence[CartLine],
    ctx: RequestContext | None = None,
    shipping: int = 495,
) -> Any:
    """The promotion's outcome on the undiscounted cart."""
    cart = base_cart(lines, products, "EUR", Money(shipping, "EUR"))
    return await promotion.apply(ctx or context(products), cart, cart)
