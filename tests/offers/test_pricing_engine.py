"""The pricing engine: best deal among competing promotions, reasons, failing promotions,
nudges and their suggestions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from shopfront.offers.contract import (
    PricedCart,
    ProductScope,
    PromotionClass,
    PromotionOutcome,
    PromotionTerms,
)
from shopfront.offers.pricing import NudgePolicy, PricingError, price_cart
from shopfront.platform.money import Money
from shopfront.plugins.promotions.stacking import priority_first
from shopfront.shoppers.context import RequestContext

from tests.plugins.promotions.kit import build, context, eur, lines_of, price, product

SHOE = product("shoe", 6000, ("Shoes",))
SOCK = product("sock", 1200, ("Socks",))
CHEAP = product("cheap", 300, ("Socks",))
PRODUCTS = {p.id: p for p in (SHOE, SOCK, CHEAP)}


def order_off(name: str, percent: str, **extra: Any) -> Any:
    return build(
        "order_discount",
        name,
        {"title": name, "params": {"discount": {"percent": percent}}, **extra},
    )


def free_shipping(threshold: int, **extra: Any) -> Any:
    return build(
        "free_shipping",
        "ship",
        {"title": "Free shipping", "params": {"threshold": eur(threshold)}, **extra},
    )


def names(cart: PricedCart) -> list[str]:
    return [a.name for a in cart.applied]


async def test_the_best_deal_wins_when_exclusives_compete() -> None:
    big = order_off("big", "25", stacking="exclusive")
    small = order_off("small", "10")
    ship = free_shipping(0)
    lines = lines_of(("shoe", 1))
    # 25% of 60.00 = 15.00 beats 10% (6.00) + shipping (4.95).
    cart = await price(PRODUCTS, lines, [small, ship, big])
    assert names(cart) == ["big"]
    reasons = {n.name: (n.code, n.conflicts) for n in cart.not_applied}
    assert reasons == {
        "small": ("DOES_NOT_COMBINE", ("big",)),
        "ship": ("DOES_NOT_COMBINE", ("big",)),
    }
    # With a dearer shipping fee the combination is the better deal.
    cart = await price(PRODUCTS, lines, [small, ship, big], shipping=1000)
    assert names(cart) == ["small", "ship"]
    assert cart.not_applied[0].name == "big" and cart.not_applied[0].conflicts == ("small", "ship")


async def test_a_tie_goes_to_fewer_promotions() -> None:
    a = order_off("a", "10", stacking="exclusive")
    b = order_off("b", "10", stacking="exclusive")
    cart = await price(PRODUCTS, lines_of(("shoe", 1)), [b, a])
    assert names(cart) == ["a"]  # same total: the earlier alternative (priority, then name)


async def test_a_promotion_with_nothing_left_to_discount_says_so() -> None:
    everything = order_off("everything", "100", priority=1)
    ten = order_off("ten", "10", priority=2)
    cart = await price(PRODUCTS, lines_of(("shoe", 1)), [everything, ten])
    assert names(cart) == ["everything"]
    assert [(n.name, n.code) for n in cart.not_applied] == [("ten", "NOTHING_TO_DISCOUNT")]


async def test_a_promotion_left_out_for_a_better_deal_says_so() -> None:
    ten = order_off("ten", "10", priority=1)
    spend = build(
        "tiered_spend",
        "spend",
        {
            "title": "Spend 100, save 40",
            "priority": 2,
            "params": {"tiers": [{"threshold": eur(10_000), "discount": {"amount": eur(4000)}}]},
        },
    )
    big = {"big": product("big", 10_500)}
    # 10% first would take the cart under 100.00 and lose the 40.00: better without it.
    cart = await price(big, lines_of(("big", 1)), [ten, spend])
    assert names(cart) == ["spend"]
    [missed] = cart.not_applied
    assert (missed.name, missed.code) == ("ten", "BETTER_DEAL")
    assert "Spend 100, save 40" in missed.reason


async def test_a_merchant_policy_decides_by_priority() -> None:
    small = order_off("small", "5", priority=1, stacking="exclusive")
    big = order_off("big", "50", priority=2, stacking="exclusive")
    products, lines = PRODUCTS, lines_of(("shoe", 1))

    def policy(ctx: Any, cart: Any, terms: Sequence[PromotionTerms]) -> Any:
        return priority_first(terms)

    cart = await price_cart(
        context(products), lines, products, promotions=[small, big], stacking=policy
    )
    assert names(cart) == ["small"]
    assert cart.not_applied[0].code == "DOES_NOT_COMBINE"


@dataclass(frozen=True)
class Broken:
    """A promotion that fails in a chosen way."""

    name: str
    mode: str
    klass: PromotionClass = PromotionClass.ORDER

    @property
    def terms(self) -> PromotionTerms:
        return PromotionTerms(self.name, self.name, self.klass)

    async def apply(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        if self.mode == "raise":
            raise RuntimeError("boom")
        if self.mode == "too_much":
            return PromotionOutcome(True, line_discounts={0: 10**9})
        if self.mode == "unknown_line":
            return PromotionOutcome(True, line_discounts={7: 1})
        if self.mode == "negative":
            return PromotionOutcome(True, line_discounts={0: -5})
        return PromotionOutcome(True)  # "nothing": applied without a discount


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        ("raise", "UNAVAILABLE"),
        ("too_much", "INVALID"),
        ("unknown_line", "INVALID"),
        ("negative", "INVALID"),
        ("nothing", "NOTHING_TO_DISCOUNT"),
    ],
)
async def test_money_paths_fail_closed(mode: str, code: str) -> None:
    ten = order_off("ten", "10")
    cart = await price(PRODUCTS, lines_of(("shoe", 1)), [Broken("bad", mode), ten])
    assert names(cart) == ["ten"]
    assert [(n.name, n.code) for n in cart.not_applied] == [("bad", code)]
    assert cart.total.amount == 6000 - 600 + 495


async def test_a_plan_naming_unknown_promotions_prices_only_known_ones() -> None:
    from shopfront.offers.contract import StackingPlan

    ten = order_off("ten", "10")

    def policy(ctx: Any, cart: Any, terms: Any) -> StackingPlan:
        return StackingPlan((("ghost", "ten", "ten"),))

    cart = await price_cart(
        context(PRODUCTS), lines_of(("shoe", 1)), PRODUCTS, promotions=[ten], stacking=policy
    )
    assert names(cart) == ["ten"] and cart.applied[0].amount == Money(600, "EUR")


async def test_a_failing_stacking_policy_prices_each_promotion_alone() -> None:
    def broken(ctx: Any, cart: Any, terms: Any) -> Any:
        raise RuntimeError("merchant bug")

    ten, ship = order_off("ten", "10"), free_shipping(0)
    cart = await price_cart(
        context(PRODUCTS),
        lines_of(("shoe", 1)),
        PRODUCTS,
        promotions=[ten, ship],
        stacking=broken,
        shipping=Money(495, "EUR"),
    )
    assert names(cart) == ["ten"]  # the best single promotion: 6.00 off beats 4.95 shipping
    assert (cart.not_applied[0].name, cart.not_applied[0].code) == ("ship", "DOES_NOT_COMBINE")


async def test_carts_that_cannot_be_priced() -> None:
    usd = {"usd": product("usd", 100, currency="USD")}
    with pytest.raises(PricingError, match="priced in USD"):
        await price(usd, lines_of(("usd", 1)), [])
    with pytest.raises(PricingError, match="quantity"):
        await price(PRODUCTS, lines_of(("shoe", 0)), [])
    with pytest.raises(PricingError, match="not available"):
        await price(PRODUCTS, lines_of(("nope", 1)), [])


# -- nudges --------------------------------------------------------------------------------


class Suggester:
    def __init__(self, ids: Sequence[str] = ("sock", "shoe", "socks2")) -> None:
        self.ids = ids
        self.calls: list[tuple[str, Money | None, ProductScope, int]] = []

    async def __call__(
        self,
        ctx: RequestContext,
        kind: str,
        missing: Money | None,
        eligible: ProductScope,
        limit: int,
    ) -> Sequence[str]:
        self.calls.append((kind, missing, eligible, limit))
        return self.ids


async def test_a_cart_near_a_threshold_gets_a_nudge_with_products() -> None:
    suggest = Suggester()
    lines = lines_of(("shoe", 1), ("cheap", 1))  # 63.00
    cart = await price(PRODUCTS, lines, [free_shipping(7500)], suggest=suggest)
    [nudge] = cart.nudges
    assert nudge.text == "Add 12.00 EUR for free shipping"
    assert nudge.missing == Money(1200, "EUR") and nudge.promotion == "ship"
    assert nudge.product_ids == ("sock", "socks2")  # the shoe is already in the cart
    assert suggest.calls == [("free_shipping", Money(1200, "EUR"), ProductScope(), 3)]


async def test_nudges_only_when_close_enough() -> None:
    lines = lines_of(("sock", 1))  # 12.00, 63.00 short of 75.00
    far = await price(PRODUCTS, lines, [free_shipping(7500)])
    assert far.nudges == ()
    assert far.not_applied[0].missing == Money(6300, "EUR")
    fixed = NudgePolicy(closeness_amounts={"EUR": Money(7000, "EUR")})
    near = await price(PRODUCTS, lines, [free_shipping(7500)], nudges=fixed)
    assert [n.promotion for n in near.nudges] == ["ship"]


async def test_a_nudge_counts_the_discounts_it_would_stack_with() -> None:
    ten = order_off("ten", "10")
    lines = lines_of(("shoe", 1))  # 60.00, 54.00 after 10% off
    cart = await price(PRODUCTS, lines, [ten, free_shipping(6000)])
    assert names(cart) == ["ten"]
    assert cart.not_applied[0].missing == Money(600, "EUR")
    assert cart.nudges[0].text == "Add 6.00 EUR for free shipping"


async def test_failing_suggestions_leave_the_nudge_without_products() -> None:
    async def broken(*args: Any) -> Sequence[str]:
        raise RuntimeError("recommender down")

    cart = await price(
        PRODUCTS, lines_of(("shoe", 1), ("cheap", 1)), [free_shipping(7500)], suggest=broken
    )
    assert cart.nudges[0].product_ids == ()
