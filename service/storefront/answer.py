"""The storefront answer: slots of items with reasons, offers, the priced cart."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shopfront.catalog.products import Product
from shopfront.extend.records import Degradation
from shopfront.offers.contract import (
    CouponOffer,
    PricedCart,
)
from shopfront.recommend.contract import Reason
from shopfront.storefront.cart_lines import CartLineError


@dataclass(frozen=True)
class SlotItem:
    position: int
    score: float
    product: Product
    reasons: tuple[Reason, ...]

    @property
    def strategy(self) -> str:
        return self.reasons[0].strategy if self.reasons else ""


@dataclass(frozen=True)
class SlotResult:
    name: str
    title: str
    recommendation_id: str
    items: tuple[SlotItem, ...]


@dataclass(frozen=True)
class StorefrontResult:
    request_id: str
    currency: str
    slots: tuple[SlotResult, ...]
    coupons: tuple[CouponOffer, ...]
    cart: PricedCart | None
    cart_error: str | None  # why the cart could not be priced at all (database down, ...)
    products: Mapping[str, Product]  # the cart's and the nudges' products
    degraded: tuple[Degradation, ...]
    experiments: tuple[tuple[str, str], ...] = ()  # (experiment name, variant) that served it
    cart_line_errors: tuple[CartLineError, ...] = ()  # lines left out of the priced cart
