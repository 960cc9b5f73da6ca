"""What coupon strategies and promotions receive and return: offers, priced carts,
outcomes, stacking plans, and their registration specs.

Part of the public plugin API (re-exported by `shopfront`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from shopfront.catalog.products import Product
from shopfront.platform.money import Money

if TYPE_CHECKING:
    pass
from shopfront.platform.strategy_setup import StrategySetup
from shopfront.recommend.contract import Reason
from shopfront.shoppers.context import RequestContext

# -- coupons -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CouponOffer:
    """A coupon offered to this shopper: the code to enter, a title, expiry, and why."""

    code: str  # what the shopper types at checkout
    title: str  # shown to the shopper
    reason: Reason  # why this shopper gets it
    expires_at: datetime | None = None  # None: no expiry
    campaign_id: str | None = None  # the campaign the code belongs to, if any
    strategy: str = ""  # filled in by the host


@runtime_checkable
class CouponStrategy(Protocol):
    async def offers(self, ctx: RequestContext) -> Sequence[CouponOffer]:
        """Offers for this shopper now (may mint a unique code through its own store access)."""
        ...


# -- cart pricing --------------------------------------------------------------------------


class PromotionClass(StrEnum):
    ORDER = "order"
    PRODUCT = "product"
    SHIPPING = "shipping"
    # Entered coupon codes price through the same chain, after promotions, as this class: a
    # promotion that combines only with named classes takes coupons only if it names "coupon".
    COUPON = "coupon"


class Stacking(StrEnum):
    EXCLUSIVE = "exclusive"  # never together with another promotion
    ALL = "all"  # combines with everything that combines
    CLASSES = "classes"  # combines only with the classes in `combines_with`


@dataclass(frozen=True)
class PromotionTerms:
    """How a promotion stacks: its class, priority (lower runs first) and stacking rule."""

    name: str  # unique; the strategy name for a plugin promotion
    title: str  # shown to the shopper
    klass: PromotionClass  # ORDER, PRODUCT, SHIPPING (or COUPON)
    priority: int = 100  # lower runs first in the chain
    stacking: Stacking = Stacking.ALL  # how it combines with others
    combines_with: frozenset[PromotionClass] = frozenset()  # the classes it combines with (CLASSES)


@dataclass(frozen=True)
class PricedLine:
    """One cart line with its price and the discount promotions took off it so far."""

    index: int  # position in the cart (line_discounts key)
    product_id: str  # the product (see ctx.products)
    quantity: int  # units
    unit_price: Money  # the product's price
    subtotal: Money  # unit_price * quantity
    discount: Money  # sum of promotion discounts allocated to this line

    @property
    def total(self) -> Money:
        return self.subtotal - self.discount


@dataclass(frozen=True)
class AppliedPromotion:
    """A promotion (or coupon) that gave a discount on the priced cart, and how much."""

    name: str  # the promotion's name (its terms.name)
    title: str  # shown to the shopper
    amount: Money  # order-level total of this promotion's discount
    line_amounts: Mapping[int, int] = field(default_factory=dict)  # line index -> minor units
    shipping_amount: int = 0  # minor units off shipping
    source: str = "promotion"  # or "coupon:<code>"


@dataclass(frozen=True)
class NotApplied:
    """A promotion (or coupon) that gave no discount: a shopper-readable reason and a code.

    ``missing`` is the amount still to spend when a spend threshold was not met;
    ``conflicts`` names the applied promotions it does not combine with.
    """

    name: str  # the promotion or coupon
    reason: str  # shown to the shopper
    code: str = "NOT_APPLICABLE"  # NOT_APPLICABLE, UNAVAILABLE, INVALID, ...
    missing: Money | None = None
    conflicts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProductScope:
    """Which products something is about: any listed product id, any product under a listed
    category path (a prefix of the product's path), or of a listed brand. Empty: every product.
    """

    product_ids: frozenset[str] = frozenset()  # these products
    categories: frozenset[tuple[str, ...]] = frozenset()  # products under these category paths
    brands: frozenset[str] = frozenset()  # products of these brands

    @property
    def everything(self) -> bool:
        return not (self.product_ids or self.categories or self.brands)

    def matches(self, product: Product) -> bool:
        if self.everything or product.id in self.product_ids or product.brand in self.brands:
            return True
        path = product.category_path
        return any(path[: len(c)] == c for c in self.categories)


@dataclass(frozen=True)
class Nudge:
    """A promotion the cart almost meets: what is missing and products that would complete it.

    ``kind`` names what the promotion gives (``free_shipping``, ``spend_threshold``,
    ``buy_x_get_y``, ``bundle``, ...). A spend nudge has ``missing`` and ``threshold`` (the
    amount to reach); a quantity nudge has ``missing_quantity``. ``eligible`` says which
    products count towards it; the engine fills ``product_ids`` with suggestions.
    """

    promotion: str  # the promotion's name
    text: str  # shown to the shopper, e.g. "Add 5.00 EUR..."
    missing: Money | None = None
    product_ids: tuple[str, ...] = ()
    kind: str = ""
    threshold: Money | None = None
    missing_quantity: int = 0
    eligible: ProductScope = field(default_factory=ProductScope)


@dataclass(frozen=True)
class PricedCart:
    """The cart priced so far: lines, shipping, what applied and what did not; the totals are
    properties (never below zero)."""

    currency: str  # ISO 4217 code of every amount
    lines: tuple[PricedLine, ...]  # in cart order
    shipping: Money  # the shipping fee before discounts
    applied: tuple[AppliedPromotion, ...] = ()  # promotions that gave a discount
    not_applied: tuple[NotApplied, ...] = ()  # promotions that did not, and why
    nudges: tuple[Nudge, ...] = ()  # promotions the cart almost meets

    @property
    def subtotal(self) -> Money:
        return sum((line.subtotal for line in self.lines), Money.zero(self.currency))

    @property
    def line_discount_total(self) -> Money:
        return sum((line.discount for line in self.lines), Money.zero(self.currency))

    @property
    def shipping_discount(self) -> Money:
        return Money(sum(a.shipping_amount for a in self.applied), self.currency)

    @property
    def discount_total(self) -> Money:
        return self.line_discount_total + self.shipping_discount

    @property
    def total(self) -> Money:
        """subtotal - discounts + shipping, never below zero."""
        net_shipping = (self.shipping - self.shipping_discount).clamp_min_zero()
        return (self.subtotal - self.line_discount_total).clamp_min_zero() + net_shipping


@dataclass(frozen=True)
class PromotionOutcome:
    """What one promotion does to the cart priced so far.

    ``line_discounts`` maps line index to minor units off that line (never more than the
    line's remaining total); ``shipping_discount`` is minor units off shipping. When
    ``applied`` is False, ``reason`` says why (``code`` classifies it, ``missing`` is the
    amount still to spend) and ``nudge`` may say what would make it apply. An applied outcome
    may also carry a nudge (a tiered promotion pointing at its next tier).
    """

    applied: bool
    reason: str = ""
    line_discounts: Mapping[int, int] = field(default_factory=dict)
    shipping_discount: int = 0
    nudge: Nudge | None = None
    code: str = ""
    missing: Money | None = None


@runtime_checkable
class Promotion(Protocol):
    @property
    def terms(self) -> PromotionTerms: ...

    async def apply(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        """The discount this promotion gives on ``priced_so_far`` (``cart`` is the undiscounted
        cart). Must not raise for a cart it does not apply to: return ``applied=False``."""
        ...


@dataclass(frozen=True)
class CouponStrategySpec:
    """A coupon strategy a plugin provides, returned by ``register_coupon_strategies``; the
    same fields as `RecommenderSpec`."""

    name: str  # unique across plugins; letters, digits, _ . -
    # Builds the strategy (sync or async).
    factory: Callable[[StrategySetup], CouponStrategy | Awaitable[CouponStrategy]]
    description: str  # shown in the plugins query
    # Settings by example (types from values).
    default_config: Mapping[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()  # config keys hidden in the plugins query
    personalized: bool = True  # False: safe for shoppers without consent
    # The declared settings: a dataclass of `setting` fields (types, bounds, docs), instead
    # of ``default_config`` (which checks values only against the defaults' types).
    config_type: type[Any] | None = None


@dataclass(frozen=True)
class PromotionSpec:
    """A promotion the plugin provides.

    ``managed=False``: one promotion, built by the host at start-up from this spec's
    configuration. ``managed=True``: a promotion *type*; merchants create any number of
    promotions of it through the API (``upsertPromotion``), and each stored promotion is built
    by calling ``factory`` with the stored definition as ``config`` (``StrategySetup.name`` is
    the promotion's id). The host builds nothing from a managed spec at start-up; a factory
    that rejects a definition raises ``ValueError`` naming the field.
    """

    name: str  # unique across plugins; letters, digits, _ . -
    factory: Callable[[StrategySetup], Promotion | Awaitable[Promotion]]
    description: str  # shown in the plugins query
    # Settings by example (types from values).
    default_config: Mapping[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()  # config keys hidden in the plugins query
    managed: bool = False  # True: a promotion type (see above)
    # The declared settings: a dataclass of `setting` fields (types, bounds, docs), instead
    # of ``default_config`` (which checks values only against the defaults' types).
    config_type: type[Any] | None = None


@dataclass(frozen=True)
class StackingPlan:
    """Alternative promotion sequences to price; the engine keeps the best for the shopper
    (lowest total), ties to the earlier alternative. Each alternative is in chain order."""

    alternatives: tuple[tuple[str, ...], ...]  # each a sequence of promotion names
