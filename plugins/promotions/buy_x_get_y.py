"""Buy X, get Y free (or at a discount), repeating per multiple up to a maximum.

    params = {"buy": 2, "get": 1,
              "scope": {"categories": ["Socks"]},        # what must be bought
              "get_scope": {"product_ids": ["gift"]},     # optional: what is given (default: scope)
              "get_percent": "100",                       # optional: 100 = free (default)
              "max_applications": 3}                      # optional: default as often as it can

Each application takes the ``get`` cheapest units of ``get_scope`` as the discounted ones and
``buy`` of the dearest remaining units of ``scope`` as the ones paid for, so the shopper gets
the cheapest items free, as shops usually word it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from shopfront import (
    Nudge,
    PricedCart,
    PricedLine,
    ProductScope,
    PromotionClass,
    PromotionOutcome,
    PromotionSpec,
    RequestContext,
    StrategySetup,
    describe_scope,
    int_value,
    percent_value,
    scope_value,
)
from shopfront.plugins.promotions.base import (
    NO_ELIGIBLE_ITEMS,
    DefinedPromotion,
    Definition,
    applied,
    eligible_lines,
    max_applications,
    not_applied,
    read_params,
    unit_discounts,
    units,
    with_nudge,
)


@dataclass(frozen=True)
class BuyXGetY(DefinedPromotion):
    definition: Definition
    buy: int
    get: int
    scope: ProductScope
    get_scope: ProductScope
    get_percent: Decimal
    max_applications: int

    def evaluate(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        buy_lines = eligible_lines(ctx, priced_so_far.lines, self.scope)
        get_lines = eligible_lines(ctx, priced_so_far.lines, self.get_scope)
        discounted = self._discounted_units(buy_lines, get_lines)
        if not discounted:
            return self._not_yet(buy_lines, get_lines)
        return applied(unit_discounts(get_lines, discounted, self.get_percent))

    def _discounted_units(
        self, buy_lines: Sequence[PricedLine], get_lines: Sequence[PricedLine]
    ) -> Counter[int]:
        """Units per line index that get the discount, application by application."""
        left = Counter({ln.index: ln.quantity for ln in (*buy_lines, *get_lines)})
        cheapest_first = sorted(get_lines, key=lambda ln: (ln.unit_price.amount, ln.index))
        dearest_first = sorted(buy_lines, key=lambda ln: (-ln.unit_price.amount, ln.index))
        discounted: Counter[int] = Counter()
        for _ in range(self.max_applications):
            gets = _take(cheapest_first, self.get, left)
            if gets is None:
                break
            buys = _take(dearest_first, self.buy, left - gets)
            if buys is None:
                break
            left -= gets + buys
            discounted += gets
        return discounted

    def _not_yet(
        self, buy_lines: Sequence[PricedLine], get_lines: Sequence[PricedLine]
    ) -> PromotionOutcome:
        reward = "free" if self.get_percent == 100 else f"{self.get_percent.normalize():f}% off"
        offer = f"buy {self.buy} from {describe_scope(self.scope)}, get {self.get} {reward}"
        if not buy_lines:
            return not_applied(offer, NO_ELIGIBLE_ITEMS)
        if self.get_scope == self.scope:
            short, scope = self.buy + self.get - units(buy_lines), self.scope
        elif units(buy_lines) < self.buy:
            short, scope = self.buy - units(buy_lines), self.scope
        else:
            short, scope = self.get - units(get_lines), self.get_scope
        nudge = Nudge(
            promotion="",
            text=f"Add {short} more from {describe_scope(scope)}: {offer}",
            kind="buy_x_get_y",
            missing_quantity=short,
            eligible=scope,
        )
        return with_nudge(not_applied(offer, NO_ELIGIBLE_ITEMS), self.definition, nudge)


def _take(lines: Sequence[PricedLine], count: int, left: Counter[int]) -> Counter[int] | None:
    """``count`` units from ``lines`` in their order, within ``left``; None if too few."""
    taken: Counter[int] = Counter()
    for line in lines:
        take = min(left[line.index], count - taken.total())
        if take > 0:
            taken[line.index] = take
        if taken.total() == count:
            return taken
    return None


def build(setup: StrategySetup) -> BuyXGetY:
    params = read_params(
        setup.config, {"buy", "get", "scope", "get_scope", "get_percent", "max_applications"}
    )
    scope = scope_value(params.get("scope"), "params.scope")
    get_scope_raw = params.get("get_scope")
    return BuyXGetY(
        definition=Definition.from_setup(setup, PromotionClass.PRODUCT, 100),
        buy=int_value(params.get("buy"), "params.buy", minimum=1, maximum=100),
        get=int_value(params.get("get"), "params.get", minimum=1, maximum=100),
        scope=scope,
        get_scope=scope
        if get_scope_raw is None
        else scope_value(get_scope_raw, "params.get_scope"),
        get_percent=percent_value(params.get("get_percent", 100), "params.get_percent"),
        max_applications=max_applications(params.get("max_applications")),
    )


SPEC = PromotionSpec(
    name="buy_x_get_y",
    factory=build,
    description="Buy X, get Y free or discounted; repeats per multiple, up to a maximum.",
    managed=True,
)
