"""One pricer: the storefront's cart, `validateCoupons` and `redeemCoupon` price a cart through
the same engine with the same inputs — stored promotions, a plugin promotion, the plugin's
stacking hook, the configured shipping fee and the shopper's experiment variant — so for any
cart the total shown, the total validated and the discount charged agree."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shopfront import hookimpl
from shopfront.catalog.products import upsert_products
from shopfront.experiments import lifecycle
from shopfront.offers.contract import PricedCart, PromotionTerms, StackingPlan
from shopfront.offers.coupon_service import CouponService
from shopfront.offers.promotions import seed_demo_promotions
from shopfront.platform.config import Settings
from shopfront.platform.keys import Role, create_key
from shopfront.platform.store import Store
from shopfront.shoppers.context import RequestContext
from shopfront.testing import StorefrontClient, StorefrontClientFactory, mint_shopper_token

from tests.plugin_doubles import percent_off, product_doc

PRICES = {"p1": 1299, "p2": 2450, "p3": 899, "p4": 6000}
CODE = "TENPCT"
SHIPPING = 395  # the config file's [shipping] fee, not the settings' default (none)
SELECTION = """
cart { total { amount } shipping { amount } shippingDiscount { amount }
       appliedPromotions { name source amount { amount } } }
"""
VALIDATE = """
query($lines: [CartLineInput!]!, $u: ID) {
  validateCoupons(cart: {currency: "EUR", lines: $lines}, codes: ["TENPCT"], userId: $u) {
    cart { total { amount } appliedPromotions { name source amount { amount } } }
    coupons { applies discount { amount } refusal }
  }
}
"""
REDEEM = """
mutation($lines: [CartLineInput!]!, $u: ID!, $o: ID!, $k: String!) {
  redeemCoupon(input: {code: "TENPCT", userId: $u, orderId: $o, idempotencyKey: $k,
               cart: {currency: "EUR", lines: $lines}}) {
    ok refusal redemption { amount { amount } }
  }
}
"""


class StackEverything:
    """A merchant plugin: a 5% promotion, and a stacking policy that applies every promotion
    in chain order (the built-in default would keep only the best combination)."""

    @hookimpl
    def register_promotions(self) -> Sequence[Any]:
        return [percent_off("plugin_five", 5)]

    @hookimpl
    def promotion_stacking(
        self, ctx: RequestContext, cart: PricedCart, promotions: Sequence[PromotionTerms]
    ) -> StackingPlan:
        return StackingPlan(alternatives=(tuple(p.name for p in promotions),))


@pytest.fixture
async def shop(
    store: Store, settings: Settings, storefront_client: StorefrontClientFactory
) -> tuple[StorefrontClient, str]:
    """The app with the plugin, stored promotions, a coupon, a shipping fee in the config file
    and a running experiment; and a merchant key for the checkout backend."""
    await upsert_products(
        store,
        [
            product_doc(pid, price={"amount": amount, "currency": "EUR"})
            for pid, amount in PRICES.items()
        ],
    )
    await seed_demo_promotions(store, settings)  # free shipping over 50, spend 50/100 save 5/15
    coupons = CouponService(store, settings)
    await coupons.create_campaign(
        {
            "id": "ten",
            "title": "10% off over 20.00",
            "currency": "EUR",
            "discount": {"kind": "percent", "percent": "10"},
            "min_spend": {"amount": 2000, "currency": "EUR"},
        }
    )
    await coupons.add_shared_code("ten", CODE)
    # Half the shoppers are in a variant without the plugin's promotion.
    now = datetime.now(UTC) - timedelta(minutes=1)
    experiment = await lifecycle.create_experiment(
        store,
        {
            "name": "no-plugin-promo",
            "traffic": 1.0,
            "variants": [
                {"name": "control", "weight": 1, "control": True},
                {
                    "name": "stored-only",
                    "weight": 1,
                    "promotions": ["demo-free-shipping", "demo-spend-more"],
                },
            ],
        },
        now=now,
    )
    await lifecycle.start_experiment(store, experiment.id, now=now)
    sf = await storefront_client(
        [("stack_everything", StackEverything())], config={"shipping": {"EUR": SHIPPING}}
    )
    _, merchant = await create_key(store, Role.MERCHANT, "checkout")
    return sf, merchant


carts = st.lists(
    st.tuples(st.sampled_from(sorted(PRICES)), st.integers(1, 4)),
    min_size=1,
    max_size=4,
    unique_by=lambda line: line[0],
)
shoppers = st.integers(0, 40).map(lambda n: f"shopper-{n:02d}")
orders = itertools.count()


def applied(cart: dict[str, Any]) -> list[tuple[str, str, int]]:
    return sorted(
        (a["name"], a["source"], a["amount"]["amount"]) for a in cart["appliedPromotions"]
    )


def in_control(sf: StorefrontClient, user: str) -> bool:
    registry = sf.composer.experiments
    assert registry is not None
    [assignment] = registry.assign(user, datetime.now(UTC))
    return assignment.variant == "control"


HYPOTHESIS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


async def test_the_shoppers_fall_in_both_variants(shop: tuple[StorefrontClient, str]) -> None:
    """Guards the property test below: its 41 shoppers are split across both variants."""
    sf, _ = shop
    assert {in_control(sf, f"shopper-{n:02d}") for n in range(41)} == {True, False}


@HYPOTHESIS
@given(lines=carts, user=shoppers)
async def test_storefront_validation_and_redemption_agree(
    shop: tuple[StorefrontClient, str], lines: list[tuple[str, int]], user: str
) -> None:
    sf, merchant = shop
    cart_lines = [{"productId": pid, "quantity": q} for pid, q in lines]
    # The storefront, as a browser sends it (the kit adds the shopper's token for userId).
    shown = await sf.query(
        {"userId": user, "page": "CART", "cart": {"lines": cart_lines, "couponCodes": [CODE]}},
        selection=SELECTION,
    )
    shown_cart = shown["cart"]
    token = mint_shopper_token(sf.runtime.settings, user)
    resp = await sf.http.post(
        "/graphql",
        json={"query": VALIDATE, "variables": {"lines": cart_lines, "u": user}},
        headers={"authorization": f"Bearer {sf.key}", "x-shopper-token": token},
    )
    validated = resp.json()["data"]["validateCoupons"]
    assert validated["cart"]["total"] == shown_cart["total"], (lines, user)
    assert applied(validated["cart"]) == applied(shown_cart), (lines, user)
    assert shown_cart["shipping"]["amount"] == SHIPPING
    # The shopper's variant decides whether the plugin's promotion runs, in both answers.
    plugin_ran = any(a["name"] == "plugin_five" for a in shown_cart["appliedPromotions"])
    assert plugin_ran == in_control(sf, user), (lines, user)

    [coupon] = validated["coupons"]
    shown_coupon = [
        a["amount"]["amount"]
        for a in shown_cart["appliedPromotions"]
        if a["source"] == f"coupon:{CODE}"
    ]
    order = f"o-{next(orders)}"
    resp = await sf.http.post(
        "/graphql",
        json={
            "query": REDEEM,
            "variables": {"lines": cart_lines, "u": user, "o": order, "k": order},
        },
        headers={"authorization": f"Bearer {merchant}"},
    )
    body = resp.json()
    assert body.get("data"), body
    redeemed = body["data"]["redeemCoupon"]
    if coupon["applies"]:
        amount = coupon["discount"]["amount"]
        assert shown_coupon == [amount], (lines, user)
        assert redeemed["ok"] and redeemed["redemption"]["amount"]["amount"] == amount
    else:
        assert shown_coupon == [] and not redeemed["ok"], (lines, user)
        assert redeemed["refusal"] == coupon["refusal"]
