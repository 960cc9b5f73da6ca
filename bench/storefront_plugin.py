"""The strategies the storefront benchmark serves when the built-in ones are not installed:
small but real — lists computed once at start-up from the catalog, served from memory, as a
production recommender serves its precomputed neighbour lists."""

from __future__ import annotations

from collections.abc import Sequence

from shopfront.extend.hookspecs import hookimpl
from shopfront.offers.contract import (
    CouponOffer,
    CouponStrategySpec,
    PricedCart,
    PromotionClass,
    PromotionOutcome,
    PromotionSpec,
    PromotionTerms,
)
from shopfront.platform.strategy_setup import StrategySetup
from shopfront.recommend.contract import Candidate, Reason, RecommenderSpec, Slot
from shopfront.shoppers.context import RequestContext

TOP_N = 200


class InStockTop:
    """The best-stocked active products, overall and per top-level category."""

    def __init__(self, overall: list[str], by_category: dict[str, list[str]]) -> None:
        self.overall = overall
        self.by_category = by_category

    @classmethod
    async def build(cls, setup: StrategySetup) -> InStockTop:
        docs = await (
            setup.store.products.find(
                {"active": True, "stock": {"$gt": 0}}, {"id": 1, "category_path": 1}
            )
            .sort([("stock", -1), ("id", 1)])
            .limit(5000)
            .to_list(None)
        )
        by_category: dict[str, list[str]] = {}
        for d in docs:
            top = (d.get("category_path") or ["-"])[0]
            if len(by_category.setdefault(top, [])) < TOP_N:
                by_category[top].append(d["id"])
        return cls([d["id"] for d in docs[:TOP_N]], by_category)


class Popular(InStockTop):
    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        carted = {line.product_id for line in ctx.cart_lines}
        picks = [pid for pid in self.overall if pid not in carted][: slot.limit * 2]
        n = len(picks)
        return [
            Candidate(pid, float(n - i), (Reason("POPULAR", "Popular right now"),))
            for i, pid in enumerate(picks)
        ]


class SameCategory(InStockTop):
    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        seen = [ctx.products[pid] for pid in ctx.session_recent if pid in ctx.products]
        if not seen:
            return []
        anchor = seen[0]
        category = anchor.category_path[0] if anchor.category_path else "-"
        carted = {line.product_id for line in ctx.cart_lines}
        picks = [p for p in self.by_category.get(category, []) if p not in carted]
        picks = picks[: slot.limit * 2]
        n = len(picks)
        reason = Reason("SAME_CATEGORY", f"More from {category}, like {anchor.title}")
        return [Candidate(pid, float(n - i), (reason,)) for i, pid in enumerate(picks)]


class Welcome:
    def __init__(self, setup: StrategySetup) -> None:
        pass

    async def offers(self, ctx: RequestContext) -> Sequence[CouponOffer]:
        return [CouponOffer("BENCH10", "10% off", Reason("WELCOME", "Welcome"))]


class TenPercent:
    def __init__(self, setup: StrategySetup) -> None:
        self.terms = PromotionTerms(setup.name, "10% off", PromotionClass.ORDER)

    async def apply(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        if not priced_so_far.lines:
            return PromotionOutcome(False, "empty cart")
        return PromotionOutcome(
            True,
            line_discounts={
                line.index: line.total.percent(10).amount for line in priced_so_far.lines
            },
        )


@hookimpl
def register_recommenders() -> Sequence[RecommenderSpec]:
    return [
        RecommenderSpec("bench_popular", Popular.build, "popular", personalized=False),
        RecommenderSpec("bench_category", SameCategory.build, "same category", personalized=False),
    ]


@hookimpl
def register_coupon_strategies() -> Sequence[CouponStrategySpec]:
    return [CouponStrategySpec("bench_welcome", Welcome, "welcome", personalized=False)]


@hookimpl
def register_promotions() -> Sequence[PromotionSpec]:
    return [PromotionSpec("bench_ten_percent", TenPercent, "10% off")]
