"""Cart pricing: the promotion chain.

Each promotion receives the cart as priced so far, in chain order, and returns a
`PromotionOutcome`; the engine validates it and applies it. Money paths fail closed: an
outcome that is missing (the strategy failed or was late) or invalid gives no discount.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace

from service.catalog import Product
from service.money import Money, MoneyError
from service.plugin_api import (
    AppliedPromotion,
    CartLine,
    NotApplied,
    Nudge,
    PricedCart,
    PricedLine,
    Promotion,
    PromotionOutcome,
)

# Runs one promotion under the host's deadline and breaker; None when it failed or was late.
PromotionRunner = Callable[[Promotion, PricedCart, PricedCart], Awaitable[PromotionOutcome | None]]


class PricingError(ValueError):
    """The cart cannot be priced (unknown product, currency mismatch, bad quantity)."""


def base_cart(
    lines: Sequence[CartLine],
    products: Mapping[str, Product],
    currency: str,
    shipping: Money | None = None,
) -> PricedCart:
    """The undiscounted cart. Currencies never mix: a product priced in another currency is
    an error, not a conversion."""
    priced: list[PricedLine] = []
    for i, line in enumerate(lines):
        if line.quantity < 1:
            raise PricingError(f"cart.lines[{i}].quantity must be at least 1")
        product = products.get(line.product_id)
        if product is None or not product.active:
            raise PricingError(f"cart.lines[{i}]: product {line.product_id!r} is not available")
        if product.price.currency != currency:
            raise PricingError(
                f"cart.lines[{i}]: product {line.product_id!r} is priced in "
                f"{product.price.currency}, the cart in {currency}"
            )
        subtotal = product.price * line.quantity
        priced.append(
            PricedLine(
                i, line.product_id, line.quantity, product.price, subtotal, Money.zero(currency)
            )
        )
    return PricedCart(currency, tuple(priced), shipping or Money.zero(currency))


def check_outcome(outcome: PromotionOutcome, so_far: PricedCart) -> str | None:
    """Why ``outcome`` cannot be applied to ``so_far``, or None when it is valid."""
    by_index = {line.index: line for line in so_far.lines}
    for index, amount in outcome.line_discounts.items():
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            return f"line {index}: discount must be a non-negative whole amount"
        line = by_index.get(index)
        if line is None:
            return f"line {index} is not in the cart"
        if amount > line.total.amount:
            return f"line {index}: discount {amount} exceeds the line's remaining total"
    remaining_shipping = so_far.shipping.amount - so_far.shipping_discount.amount
    if not isinstance(outcome.shipping_discount, int) or not (
        0 <= outcome.shipping_discount <= remaining_shipping
    ):
        return "shipping discount exceeds the remaining shipping"
    return None


def apply_outcome(
    so_far: PricedCart, name: str, title: str, outcome: PromotionOutcome, source: str = "promotion"
) -> PricedCart:
    lines = tuple(
        replace(
            line,
            discount=line.discount
            + Money(outcome.line_discounts.get(line.index, 0), so_far.currency),
        )
        for line in so_far.lines
    )
    total = sum(outcome.line_discounts.values()) + outcome.shipping_discount
    applied = AppliedPromotion(
        name=name,
        title=title,
        amount=Money(total, so_far.currency),
        line_amounts={i: a for i, a in outcome.line_discounts.items() if a},
        shipping_amount=outcome.shipping_discount,
        source=source,
    )
    return replace(so_far, lines=lines, applied=(*so_far.applied, applied))


async def run_chain(
    cart: PricedCart, promotions: Sequence[Promotion], runner: PromotionRunner
) -> PricedCart:
    """Price ``cart`` through ``promotions`` in order (the caller sorts by priority)."""
    so_far = cart
    not_applied: list[NotApplied] = []
    nudges: list[Nudge] = []
    for promotion in promotions:
        terms = promotion.terms
        outcome = await runner(promotion, cart, so_far)
        if outcome is None:
            not_applied.append(NotApplied(terms.name, "unavailable", code="UNAVAILABLE"))
            continue
        if not outcome.applied:
            not_applied.append(NotApplied(terms.name, outcome.reason or "conditions not met"))
            if outcome.nudge is not None:
                nudges.append(outcome.nudge)
            continue
        try:
            problem = check_outcome(outcome, so_far)
        except MoneyError as exc:
            problem = str(exc)
        if problem is not None:  # fail closed: a wrong discount is never given
            not_applied.append(NotApplied(terms.name, f"invalid outcome: {problem}", "INVALID"))
            continue
        so_far = apply_outcome(so_far, terms.name, terms.title, outcome)
    return replace(
        so_far,
        not_applied=(*so_far.not_applied, *not_applied),
        nudges=(*so_far.nudges, *nudges),
    )
