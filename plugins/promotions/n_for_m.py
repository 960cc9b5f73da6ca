"""N for the price of M ("3 for 2"): in every N eligible units, the cheapest N - M are free.

params = {"n": 3, "m": 2, "scope": {"brands": ["Acme"]}, "max_applications": 2}
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from shopfront import (
    Nudge,
    PricedCart,
    ProductScope,
    PromotionClass,
    PromotionOutcome,
    PromotionSpec,
    RequestContext,
    RuleError,
    StrategySetup,
    describe_scope,
    int_value,
    scope_value,
)
from shopfront.plugins.promotions.base import (
    NO_ELIGIBLE_ITEMS,
    DefinedPromotion,
    Definition,
    applied,
    cheapest_units,
    eligible_lines,
    max_applications,
    not_applied,
    read_params,
    unit_discounts,
    units,
    with_nudge,
)

FREE = Decimal(100)


@dataclass(frozen=True)
class NForM(DefinedPromotion):
    definition: Definition
    n: int
    m: int
    scope: ProductScope
    max_applications: int

    def evaluate(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        lines = eligible_lines(ctx, priced_so_far.lines, self.scope)
        offer = f"{self.n} for the price of {self.m} on {describe_scope(self.scope)}"
        count = units(lines)
        if count < self.n:
            outcome = not_applied(offer, NO_ELIGIBLE_ITEMS)
            if not lines:
                return outcome
            short = self.n - count
            nudge = Nudge(
                promotion="",
                text=f"Add {short} more from {describe_scope(self.scope)}: {offer}",
                kind="n_for_m",
                missing_quantity=short,
                eligible=self.scope,
            )
            return with_nudge(outcome, self.definition, nudge)
        times = min(count // self.n, self.max_applications)
        free = cheapest_units(lines, times * (self.n - self.m))
        return applied(unit_discounts(lines, free, FREE))


def build(setup: StrategySetup) -> NForM:
    params = read_params(setup.config, {"n", "m", "scope", "max_applications"})
    n = int_value(params.get("n"), "params.n", minimum=2, maximum=100)
    m = int_value(params.get("m"), "params.m", minimum=1, maximum=100)
    if m >= n:
        raise RuleError("params.m", f"must be less than n ({n}), got {m}")
    return NForM(
        definition=Definition.from_setup(setup, PromotionClass.PRODUCT, 100),
        n=n,
        m=m,
        scope=scope_value(params.get("scope"), "params.scope"),
        max_applications=max_applications(params.get("max_applications")),
    )


SPEC = PromotionSpec(
    name="n_for_m",
    factory=build,
    description="N for the price of M: the cheapest N - M of every N eligible units are free.",
    managed=True,
)
