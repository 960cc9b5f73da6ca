"""What every built-in promotion shares: its definition, its conditions, and small helpers.

A promotion is built from a definition document (stored through ``upsertPromotion``, or a
TOML section)::

    {
      "title": "10% off running shoes",
      "priority": 100,                       # lower runs first in the chain
      "stacking": "all",                     # "exclusive" | "all" | "classes"
      "combines_with": ["order", "shipping"],  # with "classes"
      "conditions": {"min_subtotal": {"amount": 5000, "currency": "EUR"}, "min_quantity": 2,
                     "segment": {"first_order": true}, "channels": ["web"],
                     "starts_at": "2025-06-01T00:00:00Z", "ends_at": "2025-07-01T00:00:00Z"},
      "params": {...}                        # the type's own parameters
    }

Conditions are checked on the undiscounted cart, so they do not depend on what else applies;
spend thresholds of a type's own parameters (free shipping over 50, spend 100 get 15) are
measured on what the shopper pays for the goods so far, after earlier discounts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from shopfront import (
    Money,
    Nudge,
    PricedCart,
    PricedLine,
    ProductScope,
    PromotionClass,
    PromotionOutcome,
    PromotionTerms,
    RequestContext,
    RuleError,
    Segment,
    Stacking,
    StrategySetup,
    allocate,
    check_window,
    int_value,
    money_value,
    optional_datetime,
    optional_int,
    optional_money,
    percent_value,
    same_currency,
    strings_value,
    text_value,
)

# Reason codes a promotion gives when it does not apply.
NOT_STARTED = "NOT_STARTED"
EXPIRED = "EXPIRED"
WRONG_CHANNEL = "WRONG_CHANNEL"
NOT_ELIGIBLE = "NOT_ELIGIBLE"
WRONG_CURRENCY = "WRONG_CURRENCY"
MIN_QUANTITY_NOT_MET = "MIN_QUANTITY_NOT_MET"
MIN_SPEND_NOT_MET = "MIN_SPEND_NOT_MET"
NO_ELIGIBLE_ITEMS = "NO_ELIGIBLE_ITEMS"
NOTHING_TO_DISCOUNT = "NOTHING_TO_DISCOUNT"

# Most times one promotion repeats in one cart (buy X get Y, bundles, N for M): bounds the
# work a hostile cart can cause; no real offer gives away more than this in one order.
MAX_APPLICATIONS = 1000

_DEFINITION_KEYS = {"title", "description", "priority", "stacking", "combines_with"}
_DEFINITION_KEYS |= {"conditions", "params"}
# Bookkeeping fields of a stored promotion, ignored here.
_STORED_KEYS = {"id", "type", "active", "created_at", "updated_at", "revision"}


# -- values --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Discount:
    """A percentage of an amount, or a fixed amount (never more than what it applies to)."""

    percent: Decimal | None = None
    amount: Money | None = None

    @classmethod
    def from_doc(cls, raw: Any, field: str) -> Discount:
        if not isinstance(raw, Mapping) or set(raw) - {"percent", "amount"}:
            raise RuleError(field, "must be {percent: ...} or {amount: {amount, currency}}")
        if (raw.get("percent") is None) == (raw.get("amount") is None):
            raise RuleError(field, "give exactly one of percent or amount")
        if raw.get("percent") is not None:
            return cls(percent=percent_value(raw["percent"], f"{field}.percent"))
        amount = money_value(raw["amount"], f"{field}.amount")
        if amount.amount == 0:
            raise RuleError(f"{field}.amount.amount", "must be more than 0")
        return cls(amount=amount)

    def to_doc(self) -> dict[str, Any]:
        if self.percent is not None:
            return {"percent": str(self.percent)}
        assert self.amount is not None
        return {"amount": self.amount.to_doc()}

    def off(self, base: int, currency: str) -> int:
        """Minor units off ``base`` (percent rounded half-even; fixed capped at ``base``)."""
        if self.percent is not None:
            return Money(base, currency).percent(self.percent).amount
        assert self.amount is not None
        return min(self.amount.amount, base)

    def describe(self) -> str:
        if self.percent is not None:
            return f"{self.percent.normalize():f}% off"
        assert self.amount is not None
        return f"{self.amount.format()} off"


@dataclass(frozen=True)
class Conditions:
    """When a promotion may apply at all; every condition set must hold."""

    min_subtotal: Money | None = None
    min_quantity: int | None = None
    segment: Segment = field(default_factory=Segment)
    channels: frozenset[str] = frozenset()
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    @classmethod
    def from_doc(cls, raw: Any, field: str = "conditions") -> Conditions:
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise RuleError(field, "must be a set of conditions")
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise RuleError(field, f"unknown conditions {sorted(unknown)}")
        conditions = cls(
            min_subtotal=optional_money(raw.get("min_subtotal"), f"{field}.min_subtotal"),
            min_quantity=optional_int(raw.get("min_quantity"), f"{field}.min_quantity", minimum=1),
            segment=Segment.from_doc(raw.get("segment"), f"{field}.segment"),
            channels=frozenset(strings_value(raw.get("channels"), f"{field}.channels")),
            starts_at=optional_datetime(raw.get("starts_at"), f"{field}.starts_at"),
            ends_at=optional_datetime(raw.get("ends_at"), f"{field}.ends_at"),
        )
        check_window(conditions.starts_at, conditions.ends_at, field)
        return conditions

    def unmet(self, ctx: RequestContext, cart: PricedCart, title: str) -> PromotionOutcome | None:
        """Why the promotion cannot apply to ``cart`` (the undiscounted cart), or None."""
        if self.starts_at is not None and ctx.now < self.starts_at:
            return not_applied(f"starts {self.starts_at:%Y-%m-%d %H:%M} UTC", NOT_STARTED)
        if self.ends_at is not None and ctx.now >= self.ends_at:
            return not_applied("has ended", EXPIRED)
        if self.channels and ctx.channel not in self.channels:
            return not_applied("not available in this channel", WRONG_CHANNEL)
        why = self.segment.unmet(ctx.profile, ctx.now, ctx.personalized)
        if why is not None:
            return not_applied(why, NOT_ELIGIBLE)
        units = sum(line.quantity for line in cart.lines)
        if self.min_quantity is not None and units < self.min_quantity:
            return not_applied(
                f"needs at least {self.min_quantity} items in the cart", MIN_QUANTITY_NOT_MET
            )
        if self.min_subtotal is not None:
            subtotal = cart.subtotal.amount
            if subtotal < self.min_subtotal.amount:
                missing = Money(self.min_subtotal.amount - subtotal, cart.currency)
                nudge = Nudge(
                    promotion="",
                    text=f"Add {missing.format()} to get {title}",
                    missing=missing,
                    kind="spend_threshold",
                    threshold=self.min_subtotal,
                )
                return not_applied(
                    f"spend {missing.format()} more to get it", MIN_SPEND_NOT_MET, nudge, missing
                )
        return None


@dataclass(frozen=True)
class Definition:
    """A promotion's terms (name, title, class, priority, stacking) and its conditions.

    ``currency`` is the one currency of its amounts; it applies only to carts in that
    currency. None: it has no amounts (a pure percentage) and applies in any currency.
    """

    terms: PromotionTerms
    conditions: Conditions
    currency: str | None = None

    @classmethod
    def from_setup(
        cls,
        setup: StrategySetup,
        klass: PromotionClass,
        default_priority: int,
        amounts: Iterable[Money | None] = (),
    ) -> Definition:
        """Read the common fields of ``setup.config``; ``amounts`` are the type's own money
        parameters, which must share one currency with the conditions'."""
        config = setup.config
        unknown = set(config) - _DEFINITION_KEYS - _STORED_KEYS
        if unknown:
            raise RuleError("promotion", f"unknown fields {sorted(unknown)}")
        stacking_raw = config.get("stacking", Stacking.ALL.value)
        try:
            stacking = Stacking(stacking_raw)
        except ValueError:
            choices = ", ".join(s.value for s in Stacking)
            raise RuleError("stacking", f"must be one of {choices}, got {stacking_raw!r}") from None
        combines_with = frozenset(
            _promotion_class(name, f"combines_with[{i}]")
            for i, name in enumerate(strings_value(config.get("combines_with"), "combines_with"))
        )
        if stacking is Stacking.CLASSES and not combines_with:
            raise RuleError("combines_with", 'name the classes it combines with ("classes")')
        if stacking is not Stacking.CLASSES and combines_with:
            raise RuleError("combines_with", 'only applies with stacking "classes"')
        priority = config.get("priority", default_priority)
        conditions = Conditions.from_doc(config.get("conditions"))
        # A segment's lifetime-spend amounts are compared with the profile, not the cart,
        # so they do not tie the promotion to a currency.
        currency = same_currency((conditions.min_subtotal, *amounts), "promotion")
        terms = PromotionTerms(
            name=setup.name,
            title=text_value(config.get("title"), "title"),
            klass=klass,
            priority=int_value(priority, "priority", minimum=0, maximum=1_000_000),
            stacking=stacking,
            combines_with=combines_with,
        )
        return cls(terms=terms, conditions=conditions, currency=currency)

    def unmet(self, ctx: RequestContext, cart: PricedCart) -> PromotionOutcome | None:
        if self.currency is not None and cart.currency != self.currency:
            return not_applied(f"applies to {self.currency} carts only", WRONG_CURRENCY)
        found = self.conditions.unmet(ctx, cart, self.terms.title)
        if found is not None and found.nudge is not None:
            return with_nudge(found, self, found.nudge)
        return found


class DefinedPromotion(ABC):
    """The shared shape of the built-in promotion types: a stored `Definition` gives the
    terms and the conditions every type checks first (currency, window, channel, segment,
    minimum spend); a type only says what it takes off a cart that meets them (`evaluate`)."""

    definition: Definition

    @property
    def terms(self) -> PromotionTerms:
        return self.definition.terms

    async def apply(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        if (unmet := self.definition.unmet(ctx, cart)) is not None:
            return unmet
        return self.evaluate(ctx, cart, priced_so_far)

    @abstractmethod
    def evaluate(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        """The outcome on ``priced_so_far`` (the cart after the promotions before this one),
        once the definition's conditions hold."""


def _promotion_class(name: str, field: str) -> PromotionClass:
    try:
        return PromotionClass(name)
    except ValueError:
        choices = ", ".join(c.value for c in PromotionClass)
        raise RuleError(field, f"must be one of {choices}, got {name!r}") from None


def read_params(config: Mapping[str, Any], allowed: set[str]) -> Mapping[str, Any]:
    """The ``params`` section of a definition, refusing keys the type does not know."""
    params = config.get("params") or {}
    if not isinstance(params, Mapping):
        raise RuleError("params", "must be a set of parameters")
    unknown = set(params) - allowed
    if unknown:
        raise RuleError("params", f"unknown parameters {sorted(unknown)}")
    return params


def max_applications(raw: Any, field: str = "params.max_applications") -> int:
    """How often a repeating promotion may apply in one cart (default: as often as it can)."""
    if raw is None:
        return MAX_APPLICATIONS
    return int_value(raw, field, minimum=1, maximum=MAX_APPLICATIONS)


# -- outcomes ------------------------------------------------------------------------------


def not_applied(
    reason: str, code: str, nudge: Nudge | None = None, missing: Money | None = None
) -> PromotionOutcome:
    return PromotionOutcome(applied=False, reason=reason, code=code, nudge=nudge, missing=missing)


def applied(
    line_discounts: Mapping[int, int],
    shipping_discount: int = 0,
    nudge: Nudge | None = None,
) -> PromotionOutcome:
    """An outcome for these discounts, or NOTHING_TO_DISCOUNT when they add up to nothing."""
    discounts = {i: a for i, a in line_discounts.items() if a > 0}
    if not discounts and shipping_discount == 0:
        return not_applied("nothing left to discount in this cart", NOTHING_TO_DISCOUNT, nudge)
    return PromotionOutcome(
        applied=True, line_discounts=discounts, shipping_discount=shipping_discount, nudge=nudge
    )


def with_nudge(outcome: PromotionOutcome, definition: Definition, nudge: Nudge) -> PromotionOutcome:
    """``outcome`` with ``nudge`` attributed to this promotion."""
    return replace(outcome, nudge=replace(nudge, promotion=definition.terms.name))


# -- cart helpers --------------------------------------------------------------------------


def eligible_lines(
    ctx: RequestContext, lines: Sequence[PricedLine], scope: ProductScope
) -> list[PricedLine]:
    """Lines whose product is in ``scope`` (a product the request does not know is not)."""
    if scope.everything:
        return list(lines)
    found = []
    for line in lines:
        product = ctx.products.get(line.product_id)
        if product is not None and scope.matches(product):
            found.append(line)
    return found


def left_on(line: PricedLine) -> int:
    """What the shopper still pays for ``line`` after earlier discounts, in minor units."""
    return line.subtotal.amount - line.discount.amount


def remaining(lines: Iterable[PricedLine]) -> int:
    """What the shopper still pays for ``lines`` after earlier discounts, in minor units."""
    return sum(left_on(line) for line in lines)


def spread(lines: Sequence[PricedLine], amount: int) -> dict[int, int]:
    """Split ``amount`` over ``lines`` in proportion to what is left on each, exactly
    (largest remainder). No line gets more than what is left on it when ``amount`` does not
    exceed the lines' remaining total, which callers ensure."""
    weights = [left_on(line) for line in lines]
    parts = allocate(amount, weights)
    return {line.index: part for line, part in zip(lines, parts, strict=True) if part}


def cheapest_units(lines: Sequence[PricedLine], count: int) -> dict[int, int]:
    """The ``count`` cheapest units among ``lines`` (by regular unit price, ties to the
    earlier line), as units per line index."""
    taken: dict[int, int] = {}
    for line in sorted(lines, key=lambda ln: (ln.unit_price.amount, ln.index)):
        if count <= 0:
            break
        take = min(line.quantity, count)
        taken[line.index] = take
        count -= take
    return taken


def unit_discounts(
    lines: Sequence[PricedLine], units: Mapping[int, int], percent: Decimal
) -> dict[int, int]:
    """``percent`` off ``units`` of each line at its regular price, rounded half-even per
    line and capped at what is left on the line."""
    by_index = {line.index: line for line in lines}
    out: dict[int, int] = {}
    for index, count in units.items():
        line = by_index[index]
        off = (line.unit_price * count).percent(percent).amount
        out[index] = min(off, left_on(line))
    return out


def units(lines: Iterable[PricedLine]) -> int:
    return sum(line.quantity for line in lines)
