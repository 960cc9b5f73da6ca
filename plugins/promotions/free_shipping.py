"""Free shipping, optionally over a spend threshold.

    params = {"threshold": {"amount": 5000, "currency": "EUR"}}   # omit: always free

The threshold is measured on what the shopper pays for the goods after the promotions before
it; below it, the promotion says how much is missing ("Add 12.00 EUR for free shipping").
"""

from __future__ import annotations

from dataclasses import dataclass

from shopfront import (
    Money,
    Nudge,
    PricedCart,
    PromotionClass,
    PromotionOutcome,
    PromotionSpec,
    RequestContext,
    StrategySetup,
    optional_money,
)
from shopfront.plugins.promotions.base import (
    MIN_SPEND_NOT_MET,
    NOTHING_TO_DISCOUNT,
    DefinedPromotion,
    Definition,
    applied,
    not_applied,
    read_params,
    remaining,
    with_nudge,
)


@dataclass(frozen=True)
class FreeShipping(DefinedPromotion):
    definition: Definition
    threshold: Money | None

    def evaluate(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        shipping_left = priced_so_far.shipping.amount - priced_so_far.shipping_discount.amount
        if shipping_left <= 0:
            return not_applied("shipping is already free", NOTHING_TO_DISCOUNT)
        spent = remaining(priced_so_far.lines)
        if self.threshold is not None and spent < self.threshold.amount:
            missing = Money(self.threshold.amount - spent, cart.currency)
            nudge = Nudge(
                promotion="",
                text=f"Add {missing.format()} for free shipping",
                missing=missing,
                kind="free_shipping",
                threshold=self.threshold,
            )
            outcome = not_applied(
                f"spend {missing.format()} more for free shipping", MIN_SPEND_NOT_MET, None, missing
            )
            return with_nudge(outcome, self.definition, nudge)
        return applied({}, shipping_discount=shipping_left)


def build(setup: StrategySetup) -> FreeShipping:
    params = read_params(setup.config, {"threshold"})
    threshold = optional_money(params.get("threshold"), "params.threshold")
    definition = Definition.from_setup(setup, PromotionClass.SHIPPING, 300, [threshold])
    return FreeShipping(definition, threshold)


SPEC = PromotionSpec(
    name="free_shipping",
    factory=build,
    description="Free shipping, optionally over a spend threshold.",
    managed=True,
)
