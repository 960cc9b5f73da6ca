"""Category affinity: a discount in the shopper's favourite category, once a week.

    [strategies.category_affinity]
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
    setting,
)
from shopfront.plugins.coupons.base import (
    OfferConfig,
    OfferTerms,
    PersonalCoupons,
    can_personalize,
)


@dataclass(frozen=True)
class CategoryAffinityConfig(OfferConfig):
    min_orders: int = setting(1, doc="Orders a shopper needs before the offer.", min=0)
    validity_days: int = setting(7, doc="How long a minted code lasts, in days.", min=1)


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
    config = setup.config_as(CategoryAffinityConfig)
    terms = OfferTerms.from_settings(config)
    return CategoryAffinity(
        PersonalCoupons.from_setup(setup, "favourite category", terms), config.min_orders
    )


SPEC = CouponStrategySpec(
    name="category_affinity",
    factory=build,
    description="A discount in the shopper's favourite category, once a week.",
    config_type=CategoryAffinityConfig,
)
