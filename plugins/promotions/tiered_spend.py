"""Spend more, save more: the highest tier the shopper reaches applies.

    params = {"tiers": [
                {"threshold": {"amount": 5000, "currency": "EUR"},
                 "discount": {"amount": {"amount": 500, "currency": "EUR"}}},
                {"threshold": {"amount": 10000, "currency": "EUR"},
                 "discount": {"amount": {"amount": 1500, "currency": "EUR"}}}],
              "scope": {"categories": ["Shoes"]}}          # optional: what counts as spend

Spend is what the shopper pays for the eligible goods after the promotions before it. Below
the top tier it also says what the next tier needs ("Add 12.00 EUR to save 15.00 EUR").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shopfront import (
    Money,
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
    money_value,
    scope_value,
)
from shopfront.plugins.promotions.base import (
    MIN_SPEND_NOT_MET,
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
    with_nudge,
)

MAX_TIERS = 20


@dataclass(frozen=True)
class Tier:
    threshold: Money
    discount: Discount


@dataclass(frozen=True)
class TieredSpend(DefinedPromotion):
    definition: Definition
    tiers: tuple[Tier, ...]  # thresholds strictly increasing
    scope: ProductScope

    def evaluate(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        lines = eligible_lines(ctx, priced_so_far.lines, self.scope)
        if not lines:
            return not_applied(f"for {describe_scope(self.scope)} only", NO_ELIGIBLE_ITEMS)
        spent = remaining(lines)
        reached = [tier for tier in self.tiers if tier.threshold.amount <= spent]
        upcoming = [tier for tier in self.tiers if tier.threshold.amount > spent]
        nudge = self._nudge(upcoming[0], spent, cart.currency) if upcoming else None
        if not reached:
            assert nudge is not None and nudge.missing is not None
            outcome = not_applied(
                f"spend {nudge.missing.format()} more to save",
                MIN_SPEND_NOT_MET,
                None,
                nudge.missing,
            )
            return with_nudge(outcome, self.definition, nudge)
        amount = reached[-1].discount.off(spent, cart.currency)
        outcome = applied(spread(lines, amount))
        return with_nudge(outcome, self.definition, nudge) if nudge else outcome

    def _nudge(self, tier: Tier, spent: int, currency: str) -> Nudge:
        missing = Money(tier.threshold.amount - spent, currency)
        if tier.discount.amount is not None:
            text = f"Add {missing.format()} to save {tier.discount.amount.format()}"
        else:
            text = f"Add {missing.format()} to get {tier.discount.describe()}"
        return Nudge(
            promotion="",
            text=text,
            missing=missing,
            kind="spend_threshold",
            threshold=tier.threshold,
            eligible=self.scope,
        )


def read_tiers(raw: Any) -> tuple[Tier, ...]:
    if isinstance(raw, str | bytes | Mapping) or not isinstance(raw, Sequence) or not raw:
        raise RuleError("params.tiers", "must be a list of {threshold, discount}")
    if len(raw) > MAX_TIERS:
        raise RuleError("params.tiers", f"has {len(raw)} tiers; at most {MAX_TIERS}")
    tiers: list[Tier] = []
    for i, item in enumerate(raw):
        field = f"params.tiers[{i}]"
        if not isinstance(item, Mapping) or set(item) != {"threshold", "discount"}:
            raise RuleError(field, "must have exactly threshold and discount")
        tier = Tier(
            money_value(item["threshold"], f"{field}.threshold"),
            Discount.from_doc(item["discount"], f"{field}.discount"),
        )
        if tiers and tier.threshold.amount <= tiers[-1].threshold.amount:
            raise RuleError(f"{field}.threshold", "thresholds must increase from tier to tier")
        tiers.append(tier)
    return tuple(tiers)


def build(setup: StrategySetup) -> TieredSpend:
    params = read_params(setup.config, {"tiers", "scope"})
    tiers = read_tiers(params.get("tiers"))
    scope = scope_value(params.get("scope"), "params.scope")
    amounts = [m for tier in tiers for m in (tier.threshold, tier.discount.amount)]
    definition = Definition.from_setup(setup, PromotionClass.ORDER, 200, amounts)
    return TieredSpend(definition, tiers, scope)


SPEC = PromotionSpec(
    name="tiered_spend",
    factory=build,
    description="Spend thresholds with increasing discounts (spend 50 get 5, spend 100 get 15).",
    managed=True,
)
