"""Each built-in promotion type: what it gives, why it does not, what it nudges towards."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from shopfront.offers.contract import ProductScope
from shopfront.offers.rules import RuleError
from shopfront.platform.money import Money
from shopfront.shoppers.profile_view import Profile

from tests.plugins.promotions.kit import NOW, alone, build, context, eur, lines_of, price, product

SHOE = product("shoe", 6000, ("Shoes", "Trail"), "Stride")
BOOT = product("boot", 9000, ("Shoes", "Winter"), "Peak")
SOCK = product("sock", 1200, ("Socks",), "Knit")
LINER = product("liner", 800, ("Socks",), "Knit")
PRODUCTS = {p.id: p for p in (SHOE, BOOT, SOCK, LINER)}


def promo(kind: str, params: dict[str, Any], **extra: Any) -> Any:
    return build(kind, kind, {"title": kind.replace("_", " "), "params": params, **extra})


# -- order_discount ------------------------------------------------------------------------


async def test_percent_off_the_order_spreads_over_lines() -> None:
    ten = promo("order_discount", {"discount": {"percent": "10"}})
    out = await alone(ten, PRODUCTS, lines_of(("shoe", 1), ("sock", 1)))
    assert out.applied and dict(out.line_discounts) == {0: 600, 1: 120}


async def test_fixed_off_the_order_is_capped_at_the_cart() -> None:
    big = promo("order_discount", {"discount": {"amount": eur(10_000)}})
    out = await alone(big, PRODUCTS, lines_of(("sock", 2)))
    assert dict(out.line_discounts) == {0: 2400}


# -- item_discount -------------------------------------------------------------------------


async def test_item_percent_only_on_the_scope() -> None:
    socks = promo(
        "item_discount", {"discount": {"percent": "25"}, "scope": {"categories": ["Socks"]}}
    )
    out = await alone(socks, PRODUCTS, lines_of(("shoe", 1), ("sock", 1), ("liner", 1)))
    assert dict(out.line_discounts) == {1: 300, 2: 200}


async def test_item_fixed_is_per_unit_and_capped_at_the_line() -> None:
    off = promo("item_discount", {"discount": {"amount": eur(1000)}, "scope": {"brands": ["Knit"]}})
    out = await alone(off, PRODUCTS, lines_of(("sock", 3), ("liner", 2), ("shoe", 1)))
    assert dict(out.line_discounts) == {0: 3000, 1: 1600}


async def test_item_discount_without_eligible_items_says_so() -> None:
    socks = promo("item_discount", {"discount": {"percent": "25"}, "scope": {"brands": ["Knit"]}})
    out = await alone(socks, PRODUCTS, lines_of(("shoe", 1)))
    assert not out.applied and out.code == "NO_ELIGIBLE_ITEMS" and "Knit" in out.reason


# -- buy_x_get_y ---------------------------------------------------------------------------


SOCKS = {"categories": ["Socks"]}


async def test_buy_two_get_one_free_repeats_and_takes_the_cheapest() -> None:
    b2g1 = promo("buy_x_get_y", {"buy": 2, "get": 1, "scope": SOCKS})
    out = await alone(b2g1, PRODUCTS, lines_of(("sock", 2), ("liner", 1)))
    assert dict(out.line_discounts) == {1: 800}  # the liner is the cheapest
    out = await alone(b2g1, PRODUCTS, lines_of(("sock", 6)))
    assert dict(out.line_discounts) == {0: 2400}


async def test_buy_x_get_y_respects_its_maximum_and_discount() -> None:
    once = promo(
        "buy_x_get_y",
        {"buy": 1, "get": 1, "scope": SOCKS, "get_percent": "50", "max_applications": 1},
    )
    out = await alone(once, PRODUCTS, lines_of(("sock", 4)))
    assert dict(out.line_discounts) == {0: 600}


async def test_buy_shoes_get_socks() -> None:
    gift = promo(
        "buy_x_get_y",
        {"buy": 1, "get": 1, "scope": {"categories": ["Shoes"]}, "get_scope": SOCKS},
    )
    out = await alone(gift, PRODUCTS, lines_of(("shoe", 1), ("sock", 2)))
    assert dict(out.line_discounts) == {1: 1200}
    out = await alone(gift, PRODUCTS, lines_of(("shoe", 1)))
    assert not out.applied and out.nudge is not None
    assert out.nudge.missing_quantity == 1
    assert out.nudge.eligible == ProductScope(categories=frozenset({("Socks",)}))


async def test_buy_x_get_y_nudges_when_one_item_short() -> None:
    b2g1 = promo("buy_x_get_y", {"buy": 2, "get": 1, "scope": SOCKS})
    out = await alone(b2g1, PRODUCTS, lines_of(("sock", 2)))
    assert not out.applied
    assert out.nudge.missing_quantity == 1 and out.nudge.kind == "buy_x_get_y"
    assert out.nudge.text.startswith("Add 1 more from Socks")


# -- tiered_spend --------------------------------------------------------------------------


TIERS = {
    "tiers": [
        {"threshold": eur(5000), "discount": {"amount": eur(500)}},
        {"threshold": eur(10_000), "discount": {"amount": eur(1500)}},
    ]
}


async def test_tiered_spend_applies_the_highest_tier_reached() -> None:
    tiered = promo("tiered_spend", TIERS)
    out = await alone(tiered, PRODUCTS, lines_of(("shoe", 1)))
    assert sum(out.line_discounts.values()) == 500
    assert out.nudge.text == "Add 40.00 EUR to save 15.00 EUR"
    assert out.nudge.missing == Money(4000, "EUR")
    out = await alone(tiered, PRODUCTS, lines_of(("shoe", 1), ("boot", 1)))
    assert sum(out.line_discounts.values()) == 1500 and out.nudge is None


async def test_tiered_spend_below_the_first_tier() -> None:
    out = await alone(promo("tiered_spend", TIERS), PRODUCTS, lines_of(("sock", 2)))
    assert not out.applied and out.code == "MIN_SPEND_NOT_MET"
    assert out.missing == Money(2600, "EUR")


async def test_tiered_spend_counts_what_is_paid_after_earlier_discounts() -> None:
    half = promo("order_discount", {"discount": {"percent": "50"}}, priority=1)
    tiered = promo("tiered_spend", TIERS)
    cart = await price(PRODUCTS, lines_of(("shoe", 1), ("boot", 1)), [half, tiered])
    # 150.00 halved is 75.00: the 50.00 tier, not the 100.00 one.
    assert {a.name: a.amount.amount for a in cart.applied} == {
        "order_discount": 7500,
        "tiered_spend": 500,
    }


# -- free_shipping -------------------------------------------------------------------------


async def test_free_shipping_over_a_threshold() -> None:
    free = promo("free_shipping", {"threshold": eur(5000)})
    out = await alone(free, PRODUCTS, lines_of(("shoe", 1)), shipping=495)
    assert out.applied and out.shipping_discount == 495 and not out.line_discounts
    out = await alone(free, PRODUCTS, lines_of(("sock", 2)))
    assert out.code == "MIN_SPEND_NOT_MET"
    assert out.nudge.text == "Add 26.00 EUR for free shipping"
    assert out.nudge.threshold == Money(5000, "EUR")
    out = await alone(free, PRODUCTS, lines_of(("shoe", 1)), shipping=0)
    assert out.code == "NOTHING_TO_DISCOUNT"


# -- bundle --------------------------------------------------------------------------------


KIT = {
    "items": [{"product_id": "shoe"}, {"product_id": "sock", "quantity": 2}],
    "price": eur(7000),
}


async def test_bundle_price_per_complete_set() -> None:
    bundle = promo("bundle", KIT)
    out = await alone(bundle, PRODUCTS, lines_of(("shoe", 1), ("sock", 2)))
    assert sum(out.line_discounts.values()) == 8400 - 7000
    assert dict(out.line_discounts) == {0: 1000, 1: 400}  # in proportion: 6000 vs 2400
    out = await alone(bundle, PRODUCTS, lines_of(("shoe", 2), ("sock", 5)))
    assert sum(out.line_discounts.values()) == 2 * 1400


async def test_partial_bundle_nudges_with_the_missing_product() -> None:
    out = await alone(promo("bundle", KIT), PRODUCTS, lines_of(("shoe", 1), ("sock", 1)))
    assert not out.applied
    assert out.nudge.product_ids == ("sock",) and out.nudge.missing_quantity == 1
    out = await alone(promo("bundle", KIT), PRODUCTS, lines_of(("boot", 1)))
    assert out.nudge is None


async def test_bundle_that_costs_more_gives_nothing() -> None:
    dear = promo("bundle", {**KIT, "price": eur(9000)})
    out = await alone(dear, PRODUCTS, lines_of(("shoe", 1), ("sock", 2)))
    assert out.code == "NOTHING_TO_DISCOUNT"


# -- n_for_m -------------------------------------------------------------------------------


async def test_three_for_two() -> None:
    three = promo("n_for_m", {"n": 3, "m": 2, "scope": SOCKS})
    out = await alone(three, PRODUCTS, lines_of(("sock", 2), ("liner", 1)))
    assert dict(out.line_discounts) == {1: 800}
    out = await alone(three, PRODUCTS, lines_of(("sock", 5)))
    assert dict(out.line_discounts) == {0: 1200}
    out = await alone(three, PRODUCTS, lines_of(("sock", 2)))
    assert out.nudge.missing_quantity == 1


# -- conditions ----------------------------------------------------------------------------


async def test_conditions_say_why() -> None:
    lines = lines_of(("shoe", 1))

    async def why(conditions: dict[str, Any], **ctx: Any) -> str:
        p = promo("order_discount", {"discount": {"percent": "10"}}, conditions=conditions)
        out = await alone(p, PRODUCTS, lines, context(PRODUCTS, **ctx))
        assert not out.applied
        return str(out.code)

    later = (NOW + timedelta(days=1)).isoformat()
    earlier = (NOW - timedelta(days=1)).isoformat()
    assert await why({"starts_at": later}) == "NOT_STARTED"
    assert await why({"ends_at": earlier}) == "EXPIRED"
    assert await why({"channels": ["app"]}, channel="web") == "WRONG_CHANNEL"
    assert await why({"min_quantity": 2}) == "MIN_QUANTITY_NOT_MET"
    assert await why({"min_subtotal": eur(8000)}) == "MIN_SPEND_NOT_MET"
    assert await why({"segment": {"first_order": True}}) == "NOT_ELIGIBLE"  # anonymous
    regular = Profile("u1", NOW, orders=3)
    assert await why({"segment": {"first_order": True}}, profile=regular) == "NOT_ELIGIBLE"
    usd = promo("order_discount", {"discount": {"amount": {"amount": 5, "currency": "USD"}}})
    assert (await alone(usd, PRODUCTS, lines)).code == "WRONG_CURRENCY"


async def test_segment_matches_with_a_profile_and_consent() -> None:
    first = promo(
        "order_discount",
        {"discount": {"percent": "10"}},
        conditions={"segment": {"first_order": True}},
    )
    newcomer = Profile("u1", NOW, orders=0)
    lines = lines_of(("shoe", 1))
    assert (await alone(first, PRODUCTS, lines, context(PRODUCTS, profile=newcomer))).applied
    withheld = context(PRODUCTS, profile=newcomer, personalized=False)
    assert not (await alone(first, PRODUCTS, lines, withheld)).applied


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("order_discount", {"params": {"discount": {"percent": "0"}}}, "params.discount.percent"),
        ("order_discount", {"params": {"discount": {}, "extra": 1}}, "params"),
        (
            "order_discount",
            {"params": {"discount": {"percent": 5}}, "stacking": "some"},
            "stacking",
        ),
        (
            "order_discount",
            {"params": {"discount": {"percent": 5}}, "stacking": "classes"},
            "combines_with",
        ),
        ("n_for_m", {"params": {"n": 2, "m": 2}}, "params.m"),
        ("bundle", {"params": {"items": [{"product_id": "a"}], "price": eur(1)}}, "params.items"),
        (
            "tiered_spend",
            {"params": {"tiers": [TIERS["tiers"][1], TIERS["tiers"][0]]}},
            "params.tiers[1].threshold",
        ),
        (
            "free_shipping",
            {
                "params": {"threshold": eur(100)},
                "conditions": {"min_subtotal": {"amount": 1, "currency": "USD"}},
            },
            "promotion",
        ),
        ("item_discount", {"params": {"discount": {"percent": 5}}, "title": " "}, "title"),
    ],
)
def test_bad_definitions_name_the_field(kind: str, config: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleError) as caught:
        build(kind, "bad", {"title": "Bad", **config})
    assert caught.value.field == field
