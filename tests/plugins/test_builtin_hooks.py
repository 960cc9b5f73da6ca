"""The built-in promotions and coupons packages, loaded through pluggy as the host loads
them: their hooks answer, and a merchant's policy wins over the built-in defaults."""

from __future__ import annotations

from typing import Any

import pluggy
import shopfront.plugins.coupons
import shopfront.plugins.promotions
from shopfront.extend import hookspecs
from shopfront.extend.hookspecs import PROJECT, hookimpl
from shopfront.offers.contract import (
    CouponOffer,
    PromotionClass,
    PromotionTerms,
    Stacking,
    StackingPlan,
)
from shopfront.recommend.contract import Reason

from tests.plugins.promotions.kit import context


def manager(*extra: object) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(shopfront.plugins.promotions, "promotions")
    pm.register(shopfront.plugins.coupons, "coupons")
    for plugin in extra:
        pm.register(plugin)
    return pm


TERMS = [
    PromotionTerms("a", "A", PromotionClass.ORDER),
    PromotionTerms("x", "X", PromotionClass.ORDER, stacking=Stacking.EXCLUSIVE),
]


def test_registration_hooks_list_the_builtins() -> None:
    pm = manager()
    [promotion_specs] = pm.hook.register_promotions()
    assert {s.name for s in promotion_specs} == {
        "order_discount",
        "item_discount",
        "buy_x_get_y",
        "tiered_spend",
        "free_shipping",
        "bundle",
        "n_for_m",
    }
    assert all(s.managed for s in promotion_specs)  # types: the host builds none at start-up
    [strategy_specs] = pm.hook.register_coupon_strategies()
    assert {s.name for s in strategy_specs} == {
        "welcome",
        "win_back",
        "category_affinity",
        "cart_recovery",
    }
    assert all(s.personalized for s in strategy_specs)


def test_the_default_policies_answer_and_a_merchant_policy_wins() -> None:
    ctx = context()
    plan = manager().hook.promotion_stacking(ctx=ctx, cart=None, promotions=TERMS)
    assert plan == StackingPlan((("a",), ("x",)))

    class Merchant:
        @hookimpl
        def promotion_stacking(self, ctx: Any, cart: Any, promotions: Any) -> StackingPlan:
            return StackingPlan((("x",),))

        @hookimpl
        def choose_coupon_offers(self, ctx: Any, offers: Any) -> list[CouponOffer]:
            return list(offers)[-1:]

    pm = manager(Merchant())
    assert pm.hook.promotion_stacking(ctx=ctx, cart=None, promotions=TERMS) == StackingPlan(
        (("x",),)
    )
    offers = [CouponOffer(c, c, Reason("R", "r")) for c in ("A", "B")]
    assert [o.code for o in pm.hook.choose_coupon_offers(ctx=ctx, offers=offers)] == ["B"]
