"""Several instances on one database stay correct: a catalog change, a promotion change and a
new model version reach every instance; a single-use code is redeemed exactly once across
them; a revoked key stops working on all of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from shopfront.app import create_app
from shopfront.platform.config import Settings
from shopfront.platform.keys import Role, create_key, revoke_key
from shopfront.platform.store import Store
from shopfront.runtime import Runtime
from shopfront.testing import GraphQLCall, graphql_caller, test_settings

from tests.schema.test_coupons_api import CREATE, REDEEM, SHOES, VALIDATE, eur
from tests.schema.test_models_api import two_versions


@pytest.fixture
def settings(mongo_uri: str) -> Settings:
    # Version polling (promotions, models) every 0.1 s, so a change is due well within 2 s.
    return test_settings(mongo_uri, promotions_refresh_ms=100, model_poll_interval_s=0.1)


@dataclass
class Instance:
    runtime: Runtime
    call: GraphQLCall


@pytest.fixture
async def two(settings: Settings, store: Store, merchant_key: str) -> AsyncIterator[list[Instance]]:
    apps = [create_app(settings), create_app(settings)]
    async with LifespanManager(apps[0]), LifespanManager(apps[1]):
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://sf.test")
            for a in apps
        ]
        yield [
            Instance(a.state.runtime, graphql_caller(c, merchant_key))
            for a, c in zip(apps, clients, strict=True)
        ]
        for c in clients:
            await c.aclose()


async def within_2s(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` (a request to an instance) until it holds; fail past 2 s. The other
    instance has no event to wait on: polling the answer is what a client would see."""
    async with asyncio.timeout(2):
        while not await check():  # noqa: ASYNC110 - polling a remote answer, bounded
            await asyncio.sleep(0.02)


SHOE = {
    "id": "shoe",
    "title": "Trail shoe",
    "price": eur(6000),
    "stock": 5,
    "categoryPath": ["Shoes"],
    "brand": "Stride",
}
UPSERT_PRODUCTS = (
    "mutation($p: [ProductInput!]!) { upsertProducts(input: {products: $p}) { status } }"
)
PRODUCT = 'query { product(id: "shoe") { price { amount } } }'
UPSERT_PROMOTION = "mutation($input: PromotionInput!) { upsertPromotion(input: $input) { id } }"


async def test_catalog_promotion_and_model_changes_reach_both(
    two: list[Instance], store: Store, settings: Settings
) -> None:
    a, b = two
    assert (await a.call(UPSERT_PRODUCTS, {"p": [SHOE]}))["data"]["upsertProducts"]
    await a.call(UPSERT_PRODUCTS, {"p": [{**SHOE, "price": eur(5500)}]})

    async def b_has_new_price() -> bool:
        body = await b.call(PRODUCT)
        return bool(body["data"]["product"]) and body["data"]["product"]["price"]["amount"] == 5500

    await within_2s(b_has_new_price)

    # A promotion created through B prices carts on A.
    promo = {
        "id": "ten",
        "title": "Ten off",
        "rule": {"orderDiscount": {"discount": {"percent": "10"}}},
    }
    assert "errors" not in await b.call(UPSERT_PROMOTION, {"input": promo})

    async def a_discounts() -> bool:
        body = await a.call(VALIDATE, {"cart": SHOES, "codes": []})
        discount: int = body["data"]["validateCoupons"]["cart"]["discountTotal"]["amount"]
        return discount == 550

    await within_2s(a_discounts)

    # A model version activated through A is loaded by B.
    old, _new = await two_versions(store, settings)
    res = await a.call(
        "mutation($v: String!) { activateModel(input: {version: $v}) { version } }", {"v": old}
    )
    assert res["data"]["activateModel"]["version"] == old, res

    async def b_loaded_old() -> bool:
        assert b.runtime.models is not None
        loaded = b.runtime.models.loaded
        return loaded is not None and loaded.version == old

    await within_2s(b_loaded_old)


async def test_a_single_use_code_is_redeemed_once_across_instances(two: list[Instance]) -> None:
    a, b = two
    await a.call(UPSERT_PRODUCTS, {"p": [SHOE]})
    body = {
        "id": "once",
        "title": "Once",
        "currency": "EUR",
        "discount": {"kind": "FIXED", "amount": eur(500)},
    }
    assert "errors" not in await a.call(CREATE, {"input": body})
    res = await a.call(
        'mutation { generateCouponCodes(input: {campaignId: "once", count: 1}) { generated } }'
    )
    assert res["data"]["generateCouponCodes"]["generated"] == 1
    code = (await a.runtime.store.collection("coupon_codes").find_one({"campaign_id": "once"}))[
        "code"
    ]

    def attempt(inst: Instance, n: int) -> Awaitable[dict[str, Any]]:
        variables = {
            "code": code,
            "userId": f"u{n}",
            "orderId": f"o{n}",
            "key": f"k{n}",
            "cart": SHOES,
        }
        return inst.call(REDEEM, variables)

    results = await asyncio.gather(*(attempt(inst, n) for n, inst in enumerate([a, b, a, b])))
    outcomes = [r["data"]["redeemCoupon"]["ok"] for r in results]
    assert outcomes.count(True) == 1, results


async def test_a_revoked_key_stops_working_on_every_instance(
    two: list[Instance], store: Store
) -> None:
    record, key = await create_key(store, Role.MERCHANT, "short-lived")
    for inst in two:
        assert "errors" not in await inst.call(PRODUCT, key=key)
    await revoke_key(store, record.id)
    for inst in two:

        async def refused(inst: Instance = inst) -> bool:
            body = await inst.call(PRODUCT, key=key)
            return body.get("data") is None or "errors" in body

        await within_2s(refused)
