"""Shopfront: a personalization microservice for online stores.

The public plugin API is importable from here (``from shopfront import hookimpl, Recommender``);
see `shopfront.extend.api` for the list. Names load on first use, so ``import shopfront.cli``
stays cheap and the package's own modules never import this facade.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("shopfront")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

if TYPE_CHECKING:
    from shopfront.catalog.products import Product, upsert_products
    from shopfront.extend.hookspecs import hookimpl
    from shopfront.offers.campaigns import Campaign, CouponDiscount, DiscountKind
    from shopfront.offers.contract import (
        AppliedPromotion,
        CouponOffer,
        CouponStrategy,
        CouponStrategySpec,
        NotApplied,
        Nudge,
        PricedCart,
        PricedLine,
        ProductScope,
        Promotion,
        PromotionClass,
        PromotionOutcome,
        PromotionSpec,
        PromotionTerms,
        Stacking,
        StackingPlan,
    )
    from shopfront.offers.coupon_service import CouponService
    from shopfront.offers.rules import (
        RuleError,
        Segment,
        category_path,
        check_window,
        describe_scope,
        int_value,
        money_value,
        optional_datetime,
        optional_int,
        optional_money,
        percent_value,
        same_currency,
        scope_to_doc,
        scope_value,
        strings_value,
        text_value,
    )
    from shopfront.platform.config import ConfigError, Settings
    from shopfront.platform.config_schema import setting
    from shopfront.platform.money import Money, MoneyError, allocate
    from shopfront.platform.store import Store
    from shopfront.platform.strategy_setup import StrategySetup
    from shopfront.recommend.contract import (
        Candidate,
        Reason,
        Recommender,
        RecommenderSpec,
        Slot,
        SlotFilter,
        Trainable,
        TrainingData,
    )
    from shopfront.recommend.interactions import KIND, NONE, Interactions
    from shopfront.shoppers.context import CartLine, CatalogReader, PageType, RequestContext
    from shopfront.shoppers.profile_view import Profile, Purchase

__all__ = [
    "KIND",
    "NONE",
    "AppliedPromotion",
    "Campaign",
    "Candidate",
    "CartLine",
    "CatalogReader",
    "ConfigError",
    "CouponDiscount",
    "CouponOffer",
    "CouponService",
    "CouponStrategy",
    "CouponStrategySpec",
    "DiscountKind",
    "Interactions",
    "Money",
    "MoneyError",
    "NotApplied",
    "Nudge",
    "PageType",
    "PricedCart",
    "PricedLine",
    "Product",
    "ProductScope",
    "Profile",
    "Promotion",
    "PromotionClass",
    "PromotionOutcome",
    "PromotionSpec",
    "PromotionTerms",
    "Purchase",
    "Reason",
    "Recommender",
    "RecommenderSpec",
    "RequestContext",
    "RuleError",
    "Segment",
    "Settings",
    "Slot",
    "SlotFilter",
    "Stacking",
    "StackingPlan",
    "Store",
    "StrategySetup",
    "Trainable",
    "TrainingData",
    "allocate",
    "category_path",
    "check_window",
    "describe_scope",
    "hookimpl",
    "int_value",
    "money_value",
    "optional_datetime",
    "optional_int",
    "optional_money",
    "percent_value",
    "same_currency",
    "scope_to_doc",
    "scope_value",
    "setting",
    "strings_value",
    "text_value",
    "upsert_products",
]


def __getattr__(name: str) -> Any:
    api = import_module("shopfront.extend.api")
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'shopfront' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *import_module("shopfront.extend.api").__all__])
