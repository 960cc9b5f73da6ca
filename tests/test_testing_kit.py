"""The contract checks plugin authors run must catch the mistakes they describe."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest
from shopfront.offers.contract import (
    CouponOffer,
    PricedCart,
    PromotionClass,
    PromotionOutcome,
    PromotionTerms,
)
from shopfront.recommend.contract import Candidate, Reason, Slot
from shopfront.shoppers.context import RequestContext
from shopfront.testing import (
    ContractError,
    check_coupon_strategy,
    check_promotion,
    check_recommender,
    make_cart,
    make_context,
)

from tests.plugin_doubles import product

PRODUCTS = [product("p1"), product("p2")]
SLOT = Slot("s", "S", ("x",))


class Fixed:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Any:
        return self.answer


class Counter:
    def __init__(self) -> None:
        self.n = itertools.count()

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        return [Candidate("p1", float(next(self.n)))]


class Mutating:
    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        ctx.products.pop("p1", None)  # type: ignore[attr-defined]
        return []


async def test_a_good_recommender_passes() -> None:
    good = Fixed([Candidate("p1", 2.0, (Reason("R", "r"),)), Candidate("p2", 1.0)])
    found = await check_recommender(good, make_context(PRODUCTS, cart=[("p1", 1)]), SLOT)
    assert [c.product_id for c in found] == ["p1", "p2"]


@pytest.mark.parametrize(
    ("recommender", "message"),
    [
        (Fixed({"p1": 1}), "invalid output"),
        (Fixed([Candidate("p1", 1.0), Candidate("p1", 0.5)]), "more than once"),
        (Counter(), "different answers"),
        (Mutating(), "changed the request context"),
    ],
)
async def test_recommender_contract_violations_are_caught(recommender: Any, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        await check_recommender(recommender, make_context(PRODUCTS, cart=[("p1", 1)]), SLOT)


class Coupons:
    def __init__(self, *codes: str) -> None:
        self.codes = codes

    async def offers(self, ctx: RequestContext) -> Sequence[CouponOffer]:
        return [CouponOffer(c, c, Reason("R", "r")) for c in self.codes]


async def test_coupon_contract() -> None:
    ctx = make_context(PRODUCTS)
    assert [o.code for o in await check_coupon_strategy(Coupons("A", "B"), ctx)] == ["A", "B"]
    with pytest.raises(ContractError, match="more than once"):
        await check_coupon_strategy(Coupons("A", "A"), ctx)


class Promo:
    terms = PromotionTerms("p", "P", PromotionClass.ORDER)

    def __init__(self, extra: int = 0, raise_on_empty: bool = False) -> None:
        self.extra = extra
        self.raise_on_empty = raise_on_empty

    async def apply(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        if not priced_so_far.lines:
            if self.raise_on_empty:
                raise IndexError("no lines")
            return PromotionOutcome(False, "empty")
        line = priced_so_far.lines[0]
        return PromotionOutcome(True, line_discounts={0: 100 + self.extra * line.total.amount})


async def test_promotion_contract() -> None:
    ctx = make_context(PRODUCTS, cart=[("p1", 2)])
    outcome = await check_promotion(Promo(), ctx, make_cart(ctx))
    assert outcome.line_discounts == {0: 100}
    with pytest.raises(ContractError, match="exceeds the line"):
        await check_promotion(Promo(extra=1), ctx)
    with pytest.raises(ContractError, match="raised IndexError for an empty cart"):
        await check_promotion(Promo(raise_on_empty=True), ctx)
