"""Category affinity: a discount in the shopper's favourite category, once a week.

    [coupons.category_affinity]
    min_orders = 1                               # only for customers who ordered before
    discount = {kind = "percent", percent = "10"}
    sensitive_discount = {kind = "percent", percent = "15"}
    validity_days = 7

The favourite is the category the profile ranks first; the code only discounts products in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shopfront import (
    CouponOffer,
    CouponStrategySpec,
    ProductScope,
    Reason,
    RequestContext,
    StrategySetup,
    category_path,
    int_value,
)
from shopfront.plugins.coupons.base import OfferTerms, PersonalCoupons, can_personalize


@dataclass(frozen=True)
class CategoryAffinity:
    coupons: PersonalCoupons
    min_orders: int

    async def offers(self, ctx: RequestContext) -> Sequence[CouponOffer]:
        if not can_personalize(ctx):
            return ()
        profile = ctx.profile
        assert profile is not None
        if profile.orders < self.min_orders or not profile.category_affinities:
            return ()
        favourite, score = profile.category_affinities[0]
        if score <= 0:
            return ()
        year, week, _ = ctx.now.isocalendar()
        offer = await self.coupons.offer(
            ctx,
            period=f"{year}-W{week:02d}:{favourite}",
            title=favourite,
            reason=Reason("CATEGORY_AFFINITY", f"Picked for you: you often shop {favourite}."),
            eligible=ProductScope(categories=frozenset({category_path(favourite)})),
        )
        return (offer,) if offer else ()


def build(setup: StrategySetup) -> CategoryAffinity:
    terms = OfferTerms.from_config(setup.config, trigger_keys={"min_orders"})
    min_orders = int_value(setup.config.get("min_orders", 1), "min_orders", minimum=0)
    return CategoryAffinity(
        PersonalCoupons.from_setup(setup, "favourite category", terms), min_orders
    )


SPEC = CouponStrategySpec(
    name="category_affinity",
    factory=build,
    description="A discount in the shopper's favourite category, once a week.",
    default_config={
        "min_orders": 1,
        "discount": {"kind": "percent", "percent": "10"},
        "validity_days": 7,
    },
)
