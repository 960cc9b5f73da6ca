"""Properties of the pricing engine over random carts and random promotion sets."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shopfront.catalog.products import Product
from shopfront.offers.contract import PricedCart, Promotion, Stacking
from shopfront.plugins.promotions.stacking import combinable
from shopfront.shoppers.context import CartLine

from tests.plugins.promotions.kit import build, eur, price, product

CATEGORIES = (("Shoes",), ("Shoes", "Trail"), ("Socks",), ("Bags",))
BRANDS = ("Stride", "Knit", "Pack")
CLASSES = ("order", "product", "shipping", "coupon")


@st.composite
def catalogs(draw: st.DrawFn) -> dict[str, Product]:
    count = draw(st.integers(1, 6))
    return {
        f"p{i}": product(
            f"p{i}",
            draw(st.integers(1, 20_000)),
            draw(st.sampled_from(CATEGORIES)),
            draw(st.sampled_from(BRANDS)),
        )
        for i in range(count)
    }


@st.composite
def carts(draw: st.DrawFn, products: Mapping[str, Product]) -> list[CartLine]:
    ids = sorted(products)
    return [
        CartLine(draw(st.sampled_from(ids)), draw(st.integers(1, 5)))
        for _ in range(draw(st.integers(1, 6)))
    ]


def money(draw: st.DrawFn, low: int = 1, high: int = 30_000) -> dict[str, Any]:
    return eur(draw(st.integers(low, high)))


def discount(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"percent": str(draw(st.decimals(1, 100, places=1)))}
    return {"amount": money(draw, 1, 5_000)}


def scope(draw: st.DrawFn, products: Mapping[str, Product]) -> dict[str, list[str]]:
    choice = draw(st.sampled_from(["category", "brand", "products", "all"]))
    if choice == "category":
        return {"categories": [" > ".join(draw(st.sampled_from(CATEGORIES)))]}
    if choice == "brand":
        return {"brands": [draw(st.sampled_from(BRANDS))]}
    if choice == "products":
        return {"product_ids": draw(st.lists(st.sampled_from(sorted(products)), min_size=1))}
    return {}


@st.composite
def promotion_sets(draw: st.DrawFn, products: Mapping[str, Product]) -> list[Promotion]:
    promotions = []
    for i in range(draw(st.integers(0, 5))):
        kind = draw(
            st.sampled_from(
                [
                    "order_discount",
                    "item_discount",
                    "buy_x_get_y",
                    "tiered_spend",
                    "free_shipping",
                    "bundle",
                    "n_for_m",
                ]
            )
        )
        if kind == "order_discount":
            params: dict[str, Any] = {"discount": discount(draw)}
        elif kind == "item_discount":
            params = {"discount": discount(draw), "scope": scope(draw, products)}
        elif kind == "buy_x_get_y":
            params = {
                "buy": draw(st.integers(1, 3)),
                "get": draw(st.integers(1, 2)),
                "scope": scope(draw, products),
                "get_percent": str(draw(st.sampled_from([100, 50, 25]))),
                "max_applications": draw(st.none() | st.integers(1, 3)),
            }
        elif kind == "tiered_spend":
            low = draw(st.integers(1, 20_000))
            params = {
                "tiers": [
                    {"threshold": eur(low), "discount": discount(draw)},
                    {
                        "threshold": eur(low + draw(st.integers(1, 20_000))),
                        "discount": discount(draw),
                    },
                ]
            }
        elif kind == "free_shipping":
            params = {"threshold": draw(st.none() | st.builds(eur, st.integers(0, 30_000)))}
        elif kind == "bundle":
            ids = draw(
                st.lists(st.sampled_from(sorted(products)), min_size=1, max_size=3, unique=True)
            )
            params = {
                "items": [{"product_id": pid, "quantity": draw(st.integers(1, 2))} for pid in ids],
                "price": money(draw, 1, 20_000),
            }
            if sum(item["quantity"] for item in params["items"]) < 2:
                params["items"][0]["quantity"] = 2
        else:
            n = draw(st.integers(2, 4))
            params = {"n": n, "m": draw(st.integers(1, n - 1)), "scope": scope(draw, products)}
        stacking = draw(st.sampled_from(["all", "exclusive", "classes"]))
        config: dict[str, Any] = {
            "title": f"{kind} {i}",
            "priority": draw(st.integers(0, 300)),
            "stacking": stacking,
            "params": params,
        }
        if stacking == "classes":
            config["combines_with"] = draw(
                st.lists(st.sampled_from(CLASSES), min_size=1, unique=True)
            )
        if draw(st.booleans()):
            config["conditions"] = {"min_subtotal": money(draw, 1, 40_000)}
        promotions.append(build(kind, f"promo{i}", config))
    return promotions


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, Product], list[CartLine], list[Promotion], int]:
    products = draw(catalogs())
    return (
        products,
        draw(carts(products)),
        draw(promotion_sets(products)),
        draw(st.integers(0, 1_000)),
    )


PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(products: Any, lines: Any, promotions: Any, shipping: int) -> PricedCart:
    return asyncio.run(price(products, lines, promotions, shipping=shipping))


def outcome(cart: PricedCart) -> tuple[Any, ...]:
    """Everything the shopper pays and gets, without the reasons for what did not apply."""
    return (cart.lines, cart.applied, cart.total, cart.shipping)


@PROPERTY
@given(scenarios())
def test_totals_add_up_and_never_go_negative(scenario: Any) -> None:
    products, lines, promotions, shipping = scenario
    cart = run(products, lines, promotions, shipping)
    subtotal = sum(products[line.product_id].price.amount * line.quantity for line in lines)
    assert cart.subtotal.amount == subtotal
    discounts = sum(a.amount.amount for a in cart.applied)
    assert cart.discount_total.amount == discounts
    assert cart.total.amount == subtotal - discounts + shipping
    assert cart.total.amount >= 0
    assert 0 <= cart.shipping_discount.amount <= shipping
    for line in cart.lines:
        assert 0 <= line.discount.amount <= line.subtotal.amount


@PROPERTY
@given(scenarios())
def test_line_allocations_sum_exactly(scenario: Any) -> None:
    products, lines, promotions, shipping = scenario
    cart = run(products, lines, promotions, shipping)
    for applied in cart.applied:
        assert applied.amount.amount > 0
        assert sum(applied.line_amounts.values()) + applied.shipping_amount == applied.amount.amount
    for line in cart.lines:
        allocated = sum(a.line_amounts.get(line.index, 0) for a in cart.applied)
        assert allocated == line.discount.amount


@PROPERTY
@given(scenarios())
def test_an_exclusive_promotion_never_stacks(scenario: Any) -> None:
    products, lines, promotions, shipping = scenario
    cart = run(products, lines, promotions, shipping)
    terms = {p.terms.name: p.terms for p in promotions}
    applied = [terms[a.name] for a in cart.applied]
    if any(t.stacking is Stacking.EXCLUSIVE for t in applied):
        assert len(applied) == 1
    for i, a in enumerate(applied):  # and every pair that applied may combine
        for b in applied[i + 1 :]:
            assert combinable(a, b)


@PROPERTY
@given(scenarios())
def test_removing_a_promotion_that_did_not_apply_changes_nothing(scenario: Any) -> None:
    products, lines, promotions, shipping = scenario
    cart = run(products, lines, promotions, shipping)
    for missed in cart.not_applied:
        rest = [p for p in promotions if p.terms.name != missed.name]
        again = run(products, lines, rest, shipping)
        assert outcome(again) == outcome(cart)
        assert again.not_applied == tuple(n for n in cart.not_applied if n.name != missed.name)


@PROPERTY
@given(scenarios(), st.randoms(use_true_random=False))
def test_evaluation_is_deterministic(scenario: Any, rnd: random.Random) -> None:
    products, lines, promotions, shipping = scenario
    cart = run(products, lines, promotions, shipping)
    assert run(products, lines, promotions, shipping) == cart
    shuffled = list(promotions)
    rnd.shuffle(shuffled)
    again = run(products, lines, shuffled, shipping)
    assert outcome(again) == outcome(cart)
    assert sorted(again.not_applied, key=str) == sorted(cart.not_applied, key=str)


@PROPERTY
@given(
    catalogs().flatmap(lambda ps: st.tuples(st.just(ps), carts(ps))), st.decimals(1, 100, places=2)
)
def test_a_percentage_is_rounded_once_and_spread_exactly(scenario: Any, percent: Decimal) -> None:
    products, lines = scenario
    promotion = build(
        "order_discount", "pct", {"title": "pct", "params": {"discount": {"percent": str(percent)}}}
    )
    cart = run(products, lines, [promotion], 0)
    subtotal = cart.subtotal.amount
    expected = int((Decimal(subtotal) * percent / 100).quantize(Decimal(1), ROUND_HALF_EVEN))
    if expected == 0:
        assert cart.applied == ()
        return
    [applied] = cart.applied
    assert applied.amount.amount == expected
    assert sum(applied.line_amounts.values()) == expected
    for line in cart.lines:  # each line's share is within one cent of its exact share
        exact = Decimal(expected) * line.subtotal.amount / subtotal
        assert abs(line.discount.amount - exact) < 1


@PROPERTY
@given(scenarios())
def test_the_engines_integer_total_is_the_carts_total(scenario: Any) -> None:
    from shopfront.offers.pricing import total_amount

    cart = run(*scenario)
    assert total_amount(cart) == cart.total.amount
