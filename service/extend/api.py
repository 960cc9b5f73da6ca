"""The public plugin API: every name a plugin (built-in or a merchant's) may import.

Import these from the package top, ``from shopfront import hookimpl, Recommender, ...``; the
modules behind them are internal and may move. A layer contract (``make test``) keeps the
built-in plugins on exactly these names, and tests/extend/test_api.py checks that each one is
documented in docs/plugins.md.

- Hooks: `hookimpl` marks a plugin's hook implementations (see `shopfront.extend.hookspecs`).
- Registration: `RecommenderSpec`, `CouponStrategySpec`, `PromotionSpec`, the `setting`
  helper that declares a strategy's settings (its ``config_type``), and the `StrategySetup` a
  factory receives.
- Strategies: the `Recommender`, `Trainable`, `CouponStrategy` and `Promotion` protocols.
- Values they see and return: `RequestContext`, `Profile`, `Product`, `Money`, `Candidate`,
  `Reason`, `Slot`, `CouponOffer`, `PricedCart`, `PromotionOutcome`, ...
- Helpers for parsing merchant-supplied rule values (`int_value`, `money_value`, ...), the
  training columns (`Interactions`), and the coupon service a coupon strategy mints codes with.
"""

from __future__ import annotations

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
