"""A welcome coupon: one fixed code, for shoppers without an order yet."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from shopfront import ConfigError, CouponOffer, Reason, RequestContext, StrategySetup


class WelcomeCoupon:
    def __init__(self, setup: StrategySetup) -> None:
        config = setup.config
        if int(config["valid_days"]) < 1:
            raise ConfigError("valid_days must be at least 1")
        self.code = str(config["code"])
        self.title = str(config["title"])
        self.valid = timedelta(days=int(config["valid_days"]))
        self.new_only = bool(config["new_shoppers_only"])

    async def offers(self, ctx: RequestContext) -> Sequence[CouponOffer]:
        profile = ctx.profile
        if self.new_only and profile is not None and profile.orders > 0:
            return []
        # Expiry derives from the request's time, so the same request gives the same offer.
        return [
            CouponOffer(
                code=self.code,
                title=self.title,
                reason=Reason("WELCOME", "Welcome! Here is something for your first order"),
                expires_at=ctx.now + self.valid,
            )
        ]
