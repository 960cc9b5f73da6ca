"""Coupons through GraphQL: campaigns, validation with every refusal reason, redemption,
idempotency and release."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shopfront.offers.coupon_service import CouponService
from shopfront.platform.config import Settings, token_secrets
from shopfront.platform.store import Store
from shopfront.shoppers.identity import ShopperTokens
from shopfront.testing import TEST_TOKEN_SECRETS, GraphQLCall, test_settings


@pytest.fixture
def settings(mongo_uri: str) -> Settings:
    """These tests price carts with a shipping fee, as a shop that charges one."""
    return test_settings(mongo_uri, shipping_fee=("EUR=495",))


UPSERT_PRODUCTS = """
mutation($products: [ProductInput!]!) { upsertProducts(input: {products: $products}) { status } }
"""
CREATE = """
mutation($input: CouponCampaignInput!) {
  createCouponCampaign(input: $input) { id used discountGiven { amount } budgetLeft { amount } }
}
"""
UPSERT_PROMOTION = """
mutation($input: PromotionInput!) { upsertPromotion(input: $input) { id } }
"""
VALIDATE = """
query($cart: OrderCartInput!, $codes: [String!]!, $userId: ID) {
  validateCoupons(cart: $cart, codes: $codes, userId: $userId) {
    cart { subtotal { amount } discountTotal { amount } total { amount }
           appliedPromotions { name source amount { amount } } }
    coupons { code applies discount { amount currency } reason refusal
              missing { amount currency } conflictsWith }
  }
}
"""
REDEEM = """
mutation($code: String!, $userId: ID!, $orderId: ID!, $key: String!, $cart: OrderCartInput!) {
  redeemCoupon(input: {code: $code, userId: $userId, orderId: $orderId, idempotencyKey: $key,
                       cart: $cart}) {
    ok refusal message replayed missing { amount } conflictsWith
    redemption { id code userId orderId amount { amount currency } status }
  }
}
"""
RELEASE = """
mutation($orderId: ID!) {
  releaseCoupon(input: {orderId: $orderId}) {
    orderId released { id status } alreadyReleased { id }
  }
}
"""

NOW = datetime.now(UTC)


def eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


def cart(*lines: tuple[str, int]) -> dict[str, Any]:
    return {"currency": "EUR", "lines": [{"productId": p, "quantity": q} for p, q in lines]}


SHOES = cart(("shoe", 1))  # 60.00 EUR


def campaign(cid: str, code: str, **terms: Any) -> dict[str, Any]:
    return {
        "id": cid,
        "title": f"Campaign {cid}",
        "currency": "EUR",
        "discount": {"kind": "FIXED", "amount": eur(500)},
        "sharedCode": code,
        **terms,
    }


@pytest.fixture
async def shop(graphql: GraphQLCall) -> GraphQLCall:
    products = [
        {
            "id": "shoe",
            "title": "Trail shoe",
            "price": eur(6000),
            "categoryPath": ["Shoes", "Trail"],
            "brand": "Stride",
            "stock": 5,
        },
        {
            "id": "sock",
            "title": "Wool socks",
            "price": eur(1200),
            "categoryPath": ["Socks"],
            "brand": "Knit",
            "stock": 50,
        },
    ]
    res = await graphql(UPSERT_PRODUCTS, {"products": products})
    assert all(r["status"] == "CREATED" for r in res["data"]["upsertProducts"])
    return graphql


async def create(gql: GraphQLCall, body: dict[str, Any]) -> dict[str, Any]:
    res = await gql(CREATE, {"input": body})
    assert "errors" not in res, res
    created: dict[str, Any] = res["data"]["createCouponCampaign"]
    return created


def token_for(user: str) -> str:
    """The shopper token the storefront sends for ``user`` (the test settings' secret)."""
    token, _ = ShopperTokens(token_secrets(TEST_TOKEN_SECRETS)).mint(user)
    return token


async def check(
    gql: GraphQLCall, key: str, code: str, user: str | None = None, the_cart: Any = SHOES
) -> dict[str, Any]:
    token = token_for(user) if user is not None else None
    variables = {"cart": the_cart, "codes": [code], "userId": user}
    res = await gql(VALIDATE, variables, key=key, token=token)
    assert "errors" not in res, res
    [result] = res["data"]["validateCoupons"]["coupons"]
    assert isinstance(result, dict)
    return result


async def redeem(
    gql: GraphQLCall, code: str, user: str, order: str, idem: str, the_cart: Any = SHOES
) -> dict[str, Any]:
    """Redeem at checkout: the merchant's backend, with the merchant key (``gql``'s default)."""
    variables = {"code": code, "userId": user, "orderId": order, "key": idem, "cart": the_cart}
    res = await gql(REDEEM, variables)
    assert "errors" not in res, res
    result: dict[str, Any] = res["data"]["redeemCoupon"]
    return result


async def test_validation_says_why_each_code_does_not_apply(
    shop: GraphQLCall, storefront_key: str
) -> None:
    await create(shop, campaign("ok", "SAVE5"))
    await create(shop, campaign("old", "OLDCODE", endsAt=(NOW - timedelta(days=1)).isoformat()))
    await create(shop, campaign("soon", "SOONCODE", startsAt=(NOW + timedelta(days=1)).isoformat()))
    await create(shop, campaign("big", "BIGSPEND", minSpend=eur(10_000)))
    await create(shop, campaign("socks", "SOCKSONLY", eligible={"categories": ["Socks"]}))
    await create(shop, campaign("vip", "VIPONLY", segment={"minOrders": 3}))

    ok = await check(shop, storefront_key, "save-5")  # any case, dashes ignored
    assert ok == {
        "code": "SAVE5",
        "applies": True,
        "discount": eur(500),
        "reason": None,
        "refusal": None,
        "missing": None,
        "conflictsWith": [],
    }
    assert (await check(shop, storefront_key, "OLDCODE"))["refusal"] == "EXPIRED"
    assert (await check(shop, storefront_key, "SOONCODE"))["refusal"] == "NOT_STARTED"
    big = await check(shop, storefront_key, "BIGSPEND")
    assert big["refusal"] == "MIN_SPEND_NOT_MET"
    assert big["missing"] == eur(4000)
    assert "40.00 EUR" in big["reason"]
    socks = await check(shop, storefront_key, "SOCKSONLY")
    assert socks["refusal"] == "NOT_ELIGIBLE" and "Socks" in socks["reason"]
    vip = await check(shop, storefront_key, "VIPONLY", user="anyone")
    assert vip["refusal"] == "NOT_ELIGIBLE"
    unknown = await check(shop, storefront_key, "NOSUCHCODE")
    assert unknown["refusal"] == "UNKNOWN_CODE" and unknown["applies"] is False


async def test_a_code_that_does_not_combine_names_the_promotion(
    shop: GraphQLCall, storefront_key: str
) -> None:
    promotion = {
        "id": "spring",
        "title": "Spring sale",
        "rule": {"orderDiscount": {"discount": {"percent": "20"}}},
    }
    assert "errors" not in await shop(UPSERT_PROMOTION, {"input": promotion})
    await create(shop, campaign("solo", "SOLO"))  # 5.00 off, does not combine
    await create(shop, campaign("along", "ALONG", combinesWithPromotions=True))

    solo = await check(shop, storefront_key, "SOLO")
    assert solo["refusal"] == "DOES_NOT_COMBINE"
    assert solo["conflictsWith"] == ["spring"]
    assert "Spring sale" in solo["reason"]

    res = await shop(VALIDATE, {"cart": SHOES, "codes": ["ALONG"]}, key=storefront_key)
    priced = res["data"]["validateCoupons"]["cart"]
    assert [a["name"] for a in priced["appliedPromotions"]] == ["spring", "coupon:ALONG"]
    assert priced["discountTotal"] == {"amount": 1200 + 500}
    assert priced["total"]["amount"] == 6000 - 1700 + 495  # shipping fee EUR=495


async def test_redeem_enforces_limits_and_budget_with_reasons(
    shop: GraphQLCall, storefront_key: str
) -> None:
    await create(shop, campaign("once", "ONCE", usageLimit=1))
    await create(shop, campaign("mine", "MINE", perShopperLimit=1))
    await create(shop, campaign("purse", "PURSE", budget=eur(800)))
    sf = storefront_key

    first = await redeem(shop, "ONCE", "u1", "o1", "k1")
    assert first["ok"] and first["refusal"] is None
    assert first["redemption"]["amount"] == eur(500)
    assert (await check(shop, sf, "ONCE", user="u2"))["refusal"] == "USAGE_LIMIT_REACHED"
    second = await redeem(shop, "ONCE", "u2", "o2", "k2")
    assert not second["ok"] and second["refusal"] == "USAGE_LIMIT_REACHED" and second["message"]

    assert (await redeem(shop, "MINE", "u1", "o3", "k3"))["ok"]
    assert (await check(shop, sf, "MINE", user="u1"))["refusal"] == "PER_SHOPPER_LIMIT_REACHED"
    again = await redeem(shop, "MINE", "u1", "o4", "k4")
    assert again["refusal"] == "PER_SHOPPER_LIMIT_REACHED"
    assert (await redeem(shop, "MINE", "u2", "o5", "k5"))["ok"]

    assert (await redeem(shop, "PURSE", "u1", "o6", "k6"))["ok"]  # 5.00 of 8.00
    assert (await check(shop, sf, "PURSE", user="u2"))["refusal"] == "BUDGET_EXHAUSTED"
    assert (await redeem(shop, "PURSE", "u2", "o7", "k7"))["refusal"] == "BUDGET_EXHAUSTED"

    res = await shop(
        '{ couponCampaign(id: "purse") { used discountGiven { amount } budgetLeft { amount } } }'
    )
    assert res["data"]["couponCampaign"] == {
        "used": 1,
        "discountGiven": {"amount": 500},
        "budgetLeft": {"amount": 300},
    }


async def test_redeem_refuses_what_validation_refuses(
    shop: GraphQLCall, storefront_key: str
) -> None:
    await create(shop, campaign("big", "BIGSPEND", minSpend=eur(10_000)))
    result = await redeem(shop, "BIGSPEND", "u1", "o1", "k1")
    assert result["refusal"] == "MIN_SPEND_NOT_MET"
    assert result["missing"] == {"amount": 4000}
    unknown = await redeem(shop, "NOPE", "u1", "o1", "k2")
    assert unknown["refusal"] == "UNKNOWN_CODE"


async def test_idempotency_key_replays_and_refuses_other_arguments(
    shop: GraphQLCall, storefront_key: str, store: Store
) -> None:
    await create(shop, campaign("idem", "IDEM"))
    first = await redeem(shop, "IDEM", "u1", "o1", "same-key")
    again = await redeem(shop, "IDEM", "u1", "o1", "same-key")
    assert first["ok"] and again["ok"]
    assert again["replayed"] and not first["replayed"]
    assert again["redemption"] == first["redemption"]
    variables = {"code": "IDEM", "userId": "u1", "orderId": "o2", "key": "same-key", "cart": SHOES}
    res = await shop(REDEEM, variables)
    assert res["data"] is None
    assert res["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    changed_cart = {**variables, "orderId": "o1", "cart": cart(("shoe", 2))}
    res = await shop(REDEEM, changed_cart)
    assert res["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await store.collection("coupon_redemptions").count_documents({}) == 1


async def test_release_undoes_a_redemption_once(shop: GraphQLCall, storefront_key: str) -> None:
    await create(shop, campaign("once", "ONCE", usageLimit=1, budget=eur(500)))
    assert (await redeem(shop, "ONCE", "u1", "o1", "k1"))["ok"]
    res = await shop(RELEASE, {"orderId": "o1"})
    out = res["data"]["releaseCoupon"]
    assert [r["status"] for r in out["released"]] == ["RELEASED"]
    assert out["alreadyReleased"] == []
    res = await shop(RELEASE, {"orderId": "o1"})
    assert res["data"]["releaseCoupon"]["released"] == []
    assert len(res["data"]["releaseCoupon"]["alreadyReleased"]) == 1
    res = await shop('{ couponCampaign(id: "once") { used discountGiven { amount } } }')
    assert res["data"]["couponCampaign"] == {"used": 0, "discountGiven": {"amount": 0}}
    assert (await redeem(shop, "ONCE", "u2", "o2", "k2"))["ok"]


async def test_roles(shop: GraphQLCall, storefront_key: str) -> None:
    res = await shop(CREATE, {"input": campaign("x", "XCODE")}, key=storefront_key)
    assert res["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    res = await shop(RELEASE, {"orderId": "o1"}, key=storefront_key)
    assert res["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # Redemption spends budgets and codes: the checkout backend's merchant key only.
    args = {"code": "X", "userId": "u1", "orderId": "o1", "key": "k", "cart": SHOES}
    res = await shop(REDEEM, args, key=storefront_key, token=token_for("u1"))
    assert res["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_campaign_input_errors_name_the_field(shop: GraphQLCall) -> None:
    bad = campaign("bad", "BAD", budget={"amount": 100, "currency": "USD"})
    res = await shop(CREATE, {"input": bad})
    assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "currency" in res["errors"][0]["message"]
    res = await shop(CREATE, {"input": {**campaign("p", "PCT"), "discount": {"kind": "PERCENT"}}})
    assert "discount" in res["errors"][0]["message"]
    await create(shop, campaign("dup", "DUPCODE"))
    res = await shop(CREATE, {"input": campaign("dup", "OTHER")})
    assert "already exists" in res["errors"][0]["message"]


async def test_generate_codes_through_the_api(shop: GraphQLCall, store: Store) -> None:
    await create(shop, {**campaign("bulk", "BULK"), "sharedCode": None})
    res = await shop(
        'mutation { generateCouponCodes(input: {campaignId: "bulk", count: 25}) '
        "{ campaignId generated } }"
    )
    assert res["data"]["generateCouponCodes"] == {"campaignId": "bulk", "generated": 25}
    res = await shop(
        'mutation { generateCouponCodes(input: {campaignId: "bulk", count: 0}) { generated } }'
    )
    assert "count" in res["errors"][0]["message"]
    assert await store.collection("coupon_codes").count_documents({"campaign_id": "bulk"}) == 25


@pytest.mark.concurrency
async def test_concurrent_redemptions_through_graphql(
    shop: GraphQLCall, storefront_key: str, store: Store, settings: Any
) -> None:
    await create(shop, {**campaign("one", "ONE"), "sharedCode": None})
    await CouponService(store, settings).generate_codes("one", 1)
    doc = await store.collection("coupon_codes").find_one({"campaign_id": "one"})
    code = doc["code"]
    results = await asyncio.gather(
        *(redeem(shop, code, f"u{i}", f"o{i}", f"k{i}") for i in range(40))
    )
    assert sum(r["ok"] for r in results) == 1
    assert {r["refusal"] for r in results if not r["ok"]} == {"USAGE_LIMIT_REACHED"}
