"""A percentage or a fixed amount off selected products, categories or brands.

    params = {"discount": {"percent": "20"}, "scope": {"categories": ["Shoes > Running"]}}
    params = {"discount": {"amount": {"amount": 300, "currency": "EUR"}},   # per unit
              "scope": {"brands": ["Acme"], "product_ids": ["sku-1"]}}

A percentage is taken once from the eligible lines' total and spread over them exactly; a
fixed amount is off each eligible unit, never more than what is left on the line.
"""

from __future__ import annotations

from dataclasses import dataclass

from shopfront import (
    PricedCart,
    ProductScope,
    PromotionClass,
    PromotionOutcome,
    PromotionSpec,
    RequestContext,
    StrategySetup,
    describe_scope,
    scope_value,
)
from shopfront.plugins.promotions.base import (
    NO_ELIGIBLE_ITEMS,
    DefinedPromotion,
    Definition,
    Discount,
    applied,
    eligible_lines,
    not_applied,
    read_params,
    remaining,
    spread,
)


@dataclass(frozen=True)
class ItemDiscount(DefinedPromotion):
    definition: Definition
    discount: Discount
    scope: ProductScope

    def evaluate(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        lines = eligible_lines(ctx, priced_so_far.lines, self.scope)
        if not lines:
            return not_applied(f"for {describe_scope(self.scope)} only", NO_ELIGIBLE_ITEMS)
        if self.discount.amount is not None:
            per_unit = self.discount.amount.amount
            return applied({ln.index: min(per_unit * ln.quantity, ln.total.amount) for ln in lines})
        amount = self.discount.off(remaining(lines), cart.currency)
        return applied(spread(lines, amount))


def build(setup: StrategySetup) -> ItemDiscount:
    params = read_params(setup.config, {"discount", "scope"})
    discount = Discount.from_doc(params.get("discount"), "params.discount")
    scope = scope_value(params.get("scope"), "params.scope")
    definition = Definition.from_setup(setup, PromotionClass.PRODUCT, 100, [discount.amount])
    return ItemDiscount(definition, discount, scope)


SPEC = PromotionSpec(
    name="item_discount",
    factory=build,
    description="A percentage or a fixed amount per unit off products, categories or brands.",
    managed=True,
)
