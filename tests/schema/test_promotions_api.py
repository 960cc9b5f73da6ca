"""Promotions through GraphQL: a typed input per type, validation naming the field, the
priced cart with its reasons and a nudge with products that complete it."""

from __future__ import annotations

from typing import Any

import pytest
from shopfront.platform.config import Settings
from shopfront.testing import GraphQLCall, test_settings


@pytest.fixture
def settings(mongo_uri: str) -> Settings:
    """These tests price carts with a shipping fee, as a shop that charges one."""
    return test_settings(mongo_uri, shipping_fee=("EUR=495",))


UPSERT_PRODUCTS = """
mutation($products: [ProductInput!]!) { upsertProducts(input: {products: $products}) { status } }
"""
UPSERT = """
mutation($input: PromotionInput!) {
  upsertPromotion(input: $input) {
    id type title active priority stacking combinesWith params
    conditions { minSubtotal { amount currency } channels }
  }
}
"""
PRICE = """
query($cart: OrderCartInput!) {
  validateCoupons(cart: $cart, codes: []) {
    cart {
      subtotal { amount } discountTotal { amount } shipping { amount }
      shippingDiscount { amount } total { amount }
      lines { index productId discount { amount } total { amount } }
      appliedPromotions { name title source amount { amount } lines { index amount { amount } } }
      notApplied { name code reason missing { amount } conflictsWith }
      nudges { promotion text kind missing { amount } missingQuantity productIds }
    }
  }
}
"""


def eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


def cart(*lines: tuple[str, int], channel: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "currency": "EUR",
        "lines": [{"productId": p, "quantity": q} for p, q in lines],
    }
    if channel:
        body["channel"] = channel
    return body


async def seed(gql: GraphQLCall) -> None:
    def product(pid: str, price: int, category: list[str], stock: int = 10) -> dict[str, Any]:
        return {
            "id": pid,
            "title": pid,
            "price": eur(price),
            "categoryPath": category,
            "brand": "Knit" if category[0] == "Socks" else "Stride",
            "stock": stock,
        }

    products = [
        product("shoe", 4500, ["Shoes"]),
        product("sock", 1200, ["Socks"]),
        product("liner", 800, ["Socks"]),
        product("cap", 1000, ["Hats"]),
        product("scarf", 2500, ["Hats"], stock=0),
    ]
    res = await gql(UPSERT_PRODUCTS, {"products": products})
    assert "errors" not in res


async def upsert(gql: GraphQLCall, body: dict[str, Any]) -> dict[str, Any]:
    res = await gql(UPSERT, {"input": body})
    assert "errors" not in res, res
    promotion: dict[str, Any] = res["data"]["upsertPromotion"]
    return promotion


async def priced(gql: GraphQLCall, key: str, the_cart: dict[str, Any]) -> dict[str, Any]:
    res = await gql(PRICE, {"cart": the_cart}, key=key)
    assert "errors" not in res, res
    result: dict[str, Any] = res["data"]["validateCoupons"]["cart"]
    return result


async def test_every_type_through_its_typed_input(graphql: GraphQLCall) -> None:
    rules = {
        "order_discount": {"orderDiscount": {"discount": {"amount": eur(500)}}},
        "item_discount": {
            "itemDiscount": {"discount": {"percent": "15"}, "scope": {"categories": ["Socks"]}}
        },
        "buy_x_get_y": {
            "buyXGetY": {"buy": 2, "get": 1, "scope": {"brands": ["Knit"]}, "maxApplications": 2}
        },
        "tiered_spend": {
            "tieredSpend": {
                "tiers": [
                    {"threshold": eur(5000), "discount": {"amount": eur(500)}},
                    {"threshold": eur(10000), "discount": {"percent": "15"}},
                ]
            }
        },
        "free_shipping": {"freeShipping": {"threshold": eur(5000)}},
        "bundle": {
            "bundle": {
                "items": [{"productId": "shoe"}, {"productId": "sock", "quantity": 2}],
                "price": eur(6000),
            }
        },
        "n_for_m": {"nForM": {"n": 3, "m": 2, "scope": {"productIds": ["sock"]}}},
    }
    for kind, rule in rules.items():
        out = await upsert(graphql, {"id": kind, "title": kind, "rule": rule})
        assert out["type"] == kind and out["active"] is True
    res = await graphql("{ promotions { nodes { id } } promotionTypes { name } }")
    assert sorted(p["id"] for p in res["data"]["promotions"]["nodes"]) == sorted(rules)
    assert sorted(t["name"] for t in res["data"]["promotionTypes"]) == sorted(rules)


async def test_stacking_and_conditions_round_trip(graphql: GraphQLCall) -> None:
    out = await upsert(
        graphql,
        {
            "id": "app-only",
            "title": "App week",
            "priority": 7,
            "stacking": "CLASSES",
            "combinesWith": ["SHIPPING", "COUPON"],
            "conditions": {"minSubtotal": eur(3000), "channels": ["app"]},
            "rule": {"orderDiscount": {"discount": {"percent": "12.5"}}},
        },
    )
    assert out["stacking"] == "CLASSES" and out["combinesWith"] == ["SHIPPING", "COUPON"]
    assert out["priority"] == 7 and out["params"] == {"discount": {"percent": "12.5"}}
    assert out["conditions"] == {"minSubtotal": eur(3000), "channels": ["app"]}


async def test_invalid_promotions_are_refused_naming_the_field(graphql: GraphQLCall) -> None:
    cases = [
        ({"nForM": {"n": 2, "m": 3}}, {}, "params.m"),
        ({"orderDiscount": {"discount": {"percent": "0"}}}, {}, "params.discount.percent"),
        (
            {"orderDiscount": {"discount": {"percent": "5"}}},
            {"stacking": "CLASSES"},
            "combines_with",
        ),
        (
            {"freeShipping": {"threshold": eur(100)}},
            {"conditions": {"minSubtotal": {"amount": 1, "currency": "USD"}}},
            "promotion",
        ),
        ({"custom": {"type": "loyalty", "params": {}}}, {}, "type"),
    ]
    for rule, extra, field in cases:
        res = await graphql(UPSERT, {"input": {"id": "bad", "title": "Bad", "rule": rule, **extra}})
        assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", res
        assert res["errors"][0]["message"].startswith(field), res
    res = await graphql(
        UPSERT,
        {
            "input": {
                "id": "two",
                "title": "Two",
                "rule": {"nForM": {"n": 3, "m": 2}, "bundle": None},
            }
        },
    )
    assert "errors" in res  # exactly one type per promotion
    assert (await graphql("{ promotions { nodes { id } } }"))["data"]["promotions"]["nodes"] == []


async def test_priced_cart_lists_applied_reasons_and_a_nudge_with_products(
    graphql: GraphQLCall, storefront_key: str
) -> None:
    await seed(graphql)
    await upsert(
        graphql,
        {
            "id": "socks15",
            "title": "15% off socks",
            "rule": {
                "itemDiscount": {"discount": {"percent": "15"}, "scope": {"categories": ["Socks"]}}
            },
        },
    )
    await upsert(
        graphql,
        {
            "id": "ship50",
            "title": "Free shipping over 50",
            "rule": {"freeShipping": {"threshold": eur(5000)}},
        },
    )
    await upsert(
        graphql,
        {
            "id": "app",
            "title": "App only",
            "conditions": {"channels": ["app"]},
            "rule": {"orderDiscount": {"discount": {"percent": "50"}}},
        },
    )
    out = await priced(graphql, storefront_key, cart(("shoe", 1), ("sock", 1)))
    # 45.00 + 12.00 = 57.00; socks -1.80 -> 55.20 paid for goods: free shipping applies.
    assert [a["name"] for a in out["appliedPromotions"]] == ["socks15", "ship50"]
    assert out["discountTotal"] == {"amount": 180 + 495}
    assert out["total"] == {"amount": 5700 - 180}
    assert out["lines"][1] == {
        "index": 1,
        "productId": "sock",
        "discount": {"amount": 180},
        "total": {"amount": 1020},
    }
    assert out["notApplied"] == [
        {
            "name": "app",
            "code": "WRONG_CHANNEL",
            "reason": "not available in this channel",
            "missing": None,
            "conflictsWith": [],
        }
    ]

    near = await priced(graphql, storefront_key, cart(("shoe", 1)))
    assert near["shippingDiscount"] == {"amount": 0}
    [nudge] = near["nudges"]
    assert nudge["text"] == "Add 5.00 EUR for free shipping"
    assert nudge["missing"] == {"amount": 500} and nudge["kind"] == "free_shipping"
    # In stock, at or above the missing amount, not already in the cart, cheapest first.
    assert nudge["productIds"] == ["liner", "cap", "sock"]
    ship = next(n for n in near["notApplied"] if n["name"] == "ship50")
    assert ship["code"] == "MIN_SPEND_NOT_MET" and ship["missing"] == {"amount": 500}

    app = await priced(graphql, storefront_key, cart(("shoe", 1), channel="app"))
    assert [a["name"] for a in app["appliedPromotions"]] == ["app"]  # 50% beats the rest


async def test_delete_and_storefront_cannot_manage(
    graphql: GraphQLCall, storefront_key: str
) -> None:
    await upsert(graphql, {"id": "x", "title": "X", "rule": {"freeShipping": {}}})
    res = await graphql(
        'mutation { deletePromotion(input: {promotionId: "x"}) }', key=storefront_key
    )
    assert res["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    res = await graphql("{ promotions { nodes { id } } }", key=storefront_key)
    assert res["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await graphql('mutation { deletePromotion(input: {promotionId: "x"}) }'))["data"] == {
        "deletePromotion": True
    }
    assert (await graphql('mutation { deletePromotion(input: {promotionId: "x"}) }'))["data"] == {
        "deletePromotion": False
    }
