"""The storefront request as strategies see it: page, cart, shopper.

Values are frozen so one request's context can be shared by strategies running
concurrently. Part of the public plugin API (re-exported by `shopfront`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from shopfront.catalog.products import Product
from shopfront.shoppers.profile_view import Profile

if TYPE_CHECKING:
    pass


# -- the request ---------------------------------------------------------------------------


class PageType(StrEnum):
    HOME = "HOME"
    PRODUCT = "PRODUCT"
    CATEGORY = "CATEGORY"
    CART = "CART"
    SEARCH = "SEARCH"
    CHECKOUT = "CHECKOUT"


@dataclass(frozen=True)
class CartLine:
    product_id: str
    quantity: int


class CatalogReader(Protocol):
    """Per-request product lookups, batched and cached (one round trip per batch)."""

    async def get_many(self, ids: Sequence[str]) -> Mapping[str, Product]: ...


@dataclass(frozen=True)
class RequestContext:
    """One storefront request, built once and shared (read-only) by every strategy.

    ``profile`` is None for an anonymous session or an unknown shopper. ``personalized`` is
    False when the shopper withheld consent (or is in a holdout): only non-personalized
    strategies may then use shopper data. ``products`` holds the page's and the cart's products.
    """

    request_id: str
    now: datetime
    page: PageType
    currency: str
    catalog: CatalogReader
    user_id: str | None = None
    session_id: str | None = None
    product_id: str | None = None
    category_path: tuple[str, ...] | None = None
    search_query: str | None = None
    cart_lines: tuple[CartLine, ...] = ()
    coupon_codes: tuple[str, ...] = ()
    profile: Profile | None = None
    personalized: bool = True
    # Products this session viewed or carted, newest first (session-based recommendations).
    session_recent: tuple[str, ...] = ()
    products: Mapping[str, Product] = field(default_factory=dict)
    # Experiment variant overrides of strategy parameters, by strategy name.
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Where the shopper is ("web", "app", "pos", ...; empty when the storefront does not say):
    # promotions may be limited to channels.
    channel: str = ""

    @property
    def shopper_key(self) -> str | None:
        return self.user_id or self.session_id
