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
    """The kind of storefront page a request (or an event) comes from."""

    HOME = "HOME"
    PRODUCT = "PRODUCT"
    CATEGORY = "CATEGORY"
    CART = "CART"
    SEARCH = "SEARCH"
    CHECKOUT = "CHECKOUT"


@dataclass(frozen=True)
class CartLine:
    """One line of the shopper's cart as the storefront sends it."""

    product_id: str  # look it up in ctx.products
    quantity: int  # 1 to 999


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

    request_id: str  # the X-Request-ID of this request
    now: datetime  # the request time (UTC); use it, not the clock
    page: PageType  # which page is shown
    currency: str  # ISO 4217 code prices are in
    catalog: CatalogReader  # await ctx.catalog.get_many(ids): batched
    user_id: str | None = None  # a signed-in shopper (with a shopper token)
    session_id: str | None = None  # an anonymous or signed-in session
    product_id: str | None = None  # the page's product (PRODUCT pages)
    category_path: tuple[str, ...] | None = None  # the page's category (CATEGORY pages)
    search_query: str | None = None  # the search (SEARCH pages)
    cart_lines: tuple[CartLine, ...] = ()  # the cart, as sent
    coupon_codes: tuple[str, ...] = ()  # codes the shopper entered
    profile: Profile | None = None  # the shopper's profile, or None
    personalized: bool = True  # False: no shopper data may be used
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
