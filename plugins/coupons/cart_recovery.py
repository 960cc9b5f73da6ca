"""Cart recovery: a code for the items a shopper left in their cart.

    [strategies.cart_recovery]
    after_hours = 24            # the cart has not changed for this long
    max_age_days = 14           # ... but not for longer than this
    validity_hours = 48
    discount = {kind = "percent", percent = "10"}

One code per abandoned cart (a changed cart is a new period); it discounts the products that
were left in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from shopfront import (
    CouponOffer,
    CouponStrategySpec,
    ProductScope,
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
)


@dataclass(frozen=True)
class CartRecoveryConfig(OfferConfig):
    after_hours: int = setting(24, doc="Hours the cart has not changed.", min=1)
    max_age_days: int = setting(14, doc="...but not for longer than this many days.", min=1)
    validity_hours: int = setting(48, doc="How long the code lasts, in hours.", min=1)


@dataclass(frozen=True)
class CartRecovery:
    coupons: PersonalCoupons
    after: timedelta
    max_age: timedelta
    lasts: timedelta

    async def offers(self, ctx: RequestContext) -> Sequence[CouponOffer]:
        if not can_personalize(ctx):
            return ()
        profile = ctx.profile
        assert profile is not None
        if not profile.cart or profile.cart_updated_at is None:
            return ()
        idle = ctx.now - profile.cart_updated_at
        if not self.after <= idle <= self.max_age:
            return ()
        items = sum(quantity for _, quantity in profile.cart)
        offer = await self.coupons.offer(
            ctx,
            period=f"cart-{profile.cart_updated_at.isoformat()}",
            title="the items in your cart",
            reason=Reason(
                "CART_RECOVERY", f"You left {items} item{'s' if items > 1 else ''} in your cart."
            ),
            eligible=ProductScope(product_ids=frozenset(pid for pid, _ in profile.cart)),
            lasts=self.lasts,
        )
        return (offer,) if offer else ()


def build(setup: StrategySetup) -> CartRecovery:
    config = setup.config_as(CartRecoveryConfig)
    return CartRecovery(
        coupons=PersonalCoupons.from_setup(setup, "your cart", OfferTerms.from_settings(config)),
        after=timedelta(hours=config.after_hours),
        max_age=timedelta(days=config.max_age_days),
        lasts=timedelta(hours=config.validity_hours),
    )


SPEC = CouponStrategySpec(
    name="cart_recovery",
    factory=build,
    description="A code for the items a shopper left in their cart for N hours.",
    config_type=CartRecoveryConfig,
)
