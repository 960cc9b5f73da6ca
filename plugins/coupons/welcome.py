"""Welcome: a code for the shopper's first order.

[strategies.welcome]
discount = {kind = "percent", percent = "10"}
sensitive_discount = {kind = "percent", percent = "15"}
validity_days = 14
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shopfront import CouponOffer, CouponStrategySpec, Reason, RequestContext, StrategySetup
from shopfront.plugins.coupons.base import (
    OfferConfig,
    OfferTerms,
    PersonalCoupons,
    can_personalize,
)


@dataclass(frozen=True)
class Welcome:
    coupons: PersonalCoupons

    async def offers(self, ctx: RequestContext) -> Sequence[CouponOffer]:
        if not can_personalize(ctx):
            return ()
        assert ctx.profile is not None
        if ctx.profile.orders > 0:
            return ()
        offer = await self.coupons.offer(
            ctx,
            period="first-order",
            title="your first order",
            reason=Reason("FIRST_ORDER", "Welcome! Here is a treat for your first order."),
        )
        return (offer,) if offer else ()


def build(setup: StrategySetup) -> Welcome:
    terms = OfferTerms.from_settings(setup.config_as(OfferConfig))
    return Welcome(PersonalCoupons.from_setup(setup, "welcome offer", terms))


SPEC = CouponStrategySpec(
    name="welcome",
    factory=build,
    description="A code for a shopper's first order.",
    config_type=OfferConfig,
)
