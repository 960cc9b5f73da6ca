"""A merchant plugin may register a promotion type (``PromotionSpec.managed``): promotions of
that type are then created through the API and priced in the storefront like built-in ones."""

from __future__ import annotations

from collections.abc import Sequence

from shopfront.catalog.products import upsert_products
from shopfront.extend.hookspecs import hookimpl
from shopfront.offers.contract import PromotionSpec
from shopfront.platform.store import Store
from shopfront.plugins.promotions import order_discount
from shopfront.testing import StorefrontClientFactory, graphql_caller

LOYALTY = PromotionSpec(
    name="loyalty_discount",
    factory=order_discount.build,  # a type of its own, reusing a built-in's validation
    description="Loyalty members' discount off the order.",
    managed=True,
)


class LoyaltyPlugin:
    @hookimpl
    def register_promotions(self) -> Sequence[PromotionSpec]:
        return [LOYALTY]


UPSERT = """
mutation($input: PromotionInput!) { upsertPromotion(input: $input) { id type } }
"""


async def test_a_plugin_promotion_type_is_created_through_the_api_and_applied(
    store: Store, storefront_client: StorefrontClientFactory, merchant_key: str
) -> None:
    await upsert_products(
        store,
        [{"id": "mug", "title": "Mug", "price": {"amount": 2000, "currency": "EUR"}, "stock": 3}],
    )
    sf = await storefront_client([("loyalty", LoyaltyPlugin())])
    merchant = graphql_caller(sf.http, merchant_key)
    rule = {
        "custom": {
            "type": "loyalty_discount",
            "params": {"discount": {"amount": {"amount": 300, "currency": "EUR"}}},
        }
    }
    made = await merchant(UPSERT, {"input": {"id": "members", "title": "Members", "rule": rule}})
    assert made["data"]["upsertPromotion"] == {"id": "members", "type": "loyalty_discount"}, made
    out = await sf.query(
        {
            "userId": "u1",
            "page": "CART",
            "slots": [],
            "cart": {"lines": [{"productId": "mug", "quantity": 1}], "couponCodes": []},
        }
    )
    assert [a["name"] for a in out["cart"]["appliedPromotions"]] == ["members"]
    assert out["cart"]["discountTotal"]["amount"] == 300
