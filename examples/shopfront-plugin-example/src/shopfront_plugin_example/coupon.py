"""A welcome coupon: one fixed code, for shoppers without an order yet."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from shopfront import CouponOffer, Reason, RequestContext, StrategySetup, setting


@dataclass(frozen=True)
class WelcomeConfig:
    """``[strategies.example_welcome]``."""

    enabled: bool = False
    code: str = setting(
        "WELCOME10", doc="The code shoppers type at checkout.", min_len=1, secret=True
    )
    title: str = setting("10% off your first order", doc="What the offer says.", min_len=1)
    valid_days: int = setting(7, doc="How long the offer lasts.", min=1, max=365)
    new_shoppers_only: bool = setting(True, doc="Only for shoppers without an order yet.")


class WelcomeCoupon:
    def __init__(self, setup: StrategySetup) -> None:
        self.config = setup.config_as(WelcomeConfig)

    async def offers(self, ctx: RequestContext) -> Sequence[CouponOffer]:
        profile = ctx.profile
        if self.config.new_shoppers_only and profile is not None and profile.orders > 0:
            return []
        # Expiry derives from the request's time, so the same request gives the same offer.
        return [
            CouponOffer(
                code=self.config.code,
                title=self.config.title,
                reason=Reason("WELCOME", "Welcome! Here is something for your first order"),
                expires_at=ctx.now + timedelta(days=self.config.valid_days),
            )
        ]
