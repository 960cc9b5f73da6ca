"""Win-back: a code for a customer who has not ordered for a while.

    [strategies.win_back]
    after_days = 60
    discount = {kind = "percent", percent = "15"}
    validity_days = 14

One code per lapse: a new order starts a new period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shopfront import (
    CouponOffer,
    CouponStrategySpec,
    Reason,
    RequestContext,
    StrategySetup,
    setting,
)
from shopfront.plugins.coupons.base import (
    OfferConfig,
    OfferTerms,
    PersonalCoupons,
    can_personalize,
    day,
    percent_off,
)


@dataclass(frozen=True)
class WinBackConfig(OfferConfig):
    after_days: int = setting(60, doc="Days without an order before the offer.", min=1)
    discount: dict[str, Any] = setting(default_factory=percent_off("15"), doc="What it gives.")


@dataclass(frozen=True)
class WinBack:
    coupons: PersonalCoupons
    after_days: int

    async def offers(self, ctx: RequestContext) -> Sequence[CouponOffer]:
        if not can_personalize(ctx):
            return ()
        profile = ctx.profile
        assert profile is not None
        if profile.orders == 0 or profile.last_purchase_at is None:
            return ()
        days = (ctx.now - profile.last_purchase_at).days
        if days < self.after_days:
            return ()
        offer = await self.coupons.offer(
            ctx,
            period=f"since-{day(profile.last_purchase_at)}",
            title="welcome back",
            reason=Reason("WIN_BACK", f"We have missed you: your last order was {days} days ago."),
        )
        return (offer,) if offer else ()


def build(setup: StrategySetup) -> WinBack:
    config = setup.config_as(WinBackConfig)
    terms = OfferTerms.from_settings(config)
    return WinBack(
        PersonalCoupons.from_setup(setup, "welcome back offer", terms), config.after_days
    )


SPEC = CouponStrategySpec(
    name="win_back",
    factory=build,
    description="A code for a customer who has not ordered for N days.",
    config_type=WinBackConfig,
)
