"""Built-in personalized coupon strategies, written against the hooks a merchant uses.

Each module is one strategy - welcome, win-back, category affinity, cart recovery - that
mints a personal code when it applies (see `plugins.coupons.base`), with its own config and
a larger discount tier for price-sensitive shoppers (`plugins.coupons.sensitivity`). None of
them makes an offer to a shopper without personalization consent.

The default `choose_coupon_offers` shows the most urgent offers first.
"""

from __future__ import annotations

from collections.abc import Sequence

from shopfront import CouponOffer, CouponStrategySpec, RequestContext, hookimpl
from shopfront.plugins.coupons import cart_recovery, category_affinity, welcome, win_back

STRATEGIES: tuple[CouponStrategySpec, ...] = (
    welcome.SPEC,
    win_back.SPEC,
    category_affinity.SPEC,
    cart_recovery.SPEC,
)
MAX_OFFERS = 3


@hookimpl
def register_coupon_strategies() -> Sequence[CouponStrategySpec]:
    return STRATEGIES


@hookimpl(trylast=True)
def choose_coupon_offers(
    ctx: RequestContext, offers: Sequence[CouponOffer]
) -> Sequence[CouponOffer]:
    """At most `MAX_OFFERS` offers, one per code, the soonest to expire first."""
    unique = {offer.code: offer for offer in reversed(offers)}.values()
    ranked = sorted(
        unique,
        key=lambda o: (o.expires_at.timestamp() if o.expires_at else float("inf"), o.strategy),
    )
    return ranked[:MAX_OFFERS]
