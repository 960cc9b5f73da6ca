"""An example Shopfront plugin: one recommender, one coupon strategy, one promotion.

The package itself is the plugin object: Shopfront loads it through the ``shopfront``
entry point and registers the hook implementations below. The hooks only *register*; the
work happens in the strategy objects the factories build (see the modules next to this one).

Each strategy declares its settings as a dataclass (``config_type``): Shopfront checks the
config file against it before building the strategy. Every strategy here needs the merchant's
own data (product ids, a coupon code, a brand), so each ships switched off (``enabled: bool =
False`` in its settings): installing the package changes nothing until ``[strategies.<name>]``
in the config file sets its keys and ``enabled = true``.
"""

from __future__ import annotations

from collections.abc import Sequence

from shopfront import CouponStrategySpec, PromotionSpec, RecommenderSpec, hookimpl

from shopfront_plugin_example.coupon import WelcomeConfig, WelcomeCoupon
from shopfront_plugin_example.promotion import BrandPercentConfig, BrandPercentOff
from shopfront_plugin_example.recommender import StaffPicks, StaffPicksConfig

__all__ = [
    "BrandPercentConfig",
    "BrandPercentOff",
    "StaffPicks",
    "StaffPicksConfig",
    "WelcomeConfig",
    "WelcomeCoupon",
]


@hookimpl
def register_recommenders() -> Sequence[RecommenderSpec]:
    return [
        RecommenderSpec(
            name="example_staff_picks",
            factory=StaffPicks,
            description="Products the shop's staff picked, in their order",
            config_type=StaffPicksConfig,
            personalized=False,  # the same for everyone: fine without consent
        )
    ]


@hookimpl
def register_coupon_strategies() -> Sequence[CouponStrategySpec]:
    return [
        CouponStrategySpec(
            name="example_welcome",
            factory=WelcomeCoupon,
            description="A welcome code for shoppers who have not ordered yet",
            config_type=WelcomeConfig,  # `code` is secret=True: *** in the `plugins` query
            personalized=True,  # reads the shopper's order count
        )
    ]


@hookimpl
def register_promotions() -> Sequence[PromotionSpec]:
    return [
        PromotionSpec(
            name="example_brand_percent",
            factory=BrandPercentOff,
            description="A percentage off every product of one brand",
            config_type=BrandPercentConfig,
        )
    ]
