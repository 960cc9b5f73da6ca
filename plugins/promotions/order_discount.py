"""A percentage or a fixed amount off the whole order.

    params = {"discount": {"percent": "10"}}
    params = {"discount": {"amount": {"amount": 500, "currency": "EUR"}}}

The discount is taken from what the shopper still pays for the goods (after the promotions
before it in the chain) and spread over the lines in proportion, to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass

from shopfront import (
    PricedCart,
    PromotionClass,
    PromotionOutcome,
    PromotionSpec,
    RequestContext,
    StrategySetup,
)
from shopfront.plugins.promotions.base import (
    DefinedPromotion,
    Definition,
    Discount,
    applied,
    read_params,
    remaining,
    spread,
)


@dataclass(frozen=True)
class OrderDiscount(DefinedPromotion):
    definition: Definition
    discount: Discount

    def evaluate(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        lines = priced_so_far.lines
        amount = self.discount.off(remaining(lines), cart.currency)
        return applied(spread(lines, amount))


def build(setup: StrategySetup) -> OrderDiscount:
    params = read_params(setup.config, {"discount"})
    discount = Discount.from_doc(params.get("discount"), "params.discount")
    definition = Definition.from_setup(setup, PromotionClass.ORDER, 200, [discount.amount])
    return OrderDiscount(definition, discount)


SPEC = PromotionSpec(
    name="order_discount",
    factory=build,
    description="A percentage or a fixed amount off the whole order.",
    managed=True,
)
