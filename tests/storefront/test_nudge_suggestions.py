"""Nudges suggest products chosen by the recommenders: ones that count towards the promotion,
in stock, and (for a spend nudge) closing the gap first."""

from __future__ import annotations

from collections.abc import Sequence

from shopfront.catalog.products import upsert_products
from shopfront.extend.hookspecs import hookimpl
from shopfront.offers.promotions import seed_demo_promotions
from shopfront.platform.config import Settings
from shopfront.platform.store import Store
from shopfront.recommend.contract import Candidate, Reason, RecommenderSpec, Slot
from shopfront.shoppers.context import RequestContext
from shopfront.testing import StorefrontClientFactory


class Together:
    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        why = (Reason("BOUGHT_TOGETHER", "Often bought together"),)
        return [
            Candidate(pid, 1.0 / (i + 1), why) for i, pid in enumerate(("cheap", "gone", "fits"))
        ]


class TogetherPlugin:
    @hookimpl
    def register_recommenders(self) -> list[RecommenderSpec]:
        return [RecommenderSpec("bought_together", lambda setup: Together(), "Co-purchases.")]


def product(pid: str, amount: int, stock: int = 5) -> dict[str, object]:
    return {"id": pid, "title": pid, "price": {"amount": amount, "currency": "EUR"}, "stock": stock}


async def test_nudge_products_come_from_the_recommenders(
    store: Store, settings: Settings, storefront_client: StorefrontClientFactory
) -> None:
    await upsert_products(
        store,
        [
            product("jacket", 4200),
            product("cheap", 500),
            product("gone", 4000, stock=0),
            product("fits", 2500),
        ],
    )
    await seed_demo_promotions(store, settings)  # free shipping over 50.00 EUR, tiered spend
    sf = await storefront_client([("together", TogetherPlugin())], shipping_fee=("EUR=495",))
    out = await sf.query(
        {
            "userId": "u1",
            "page": "CART",
            "cart": {"lines": [{"productId": "jacket", "quantity": 1}], "couponCodes": []},
            "slots": [],
        }
    )
    nudges = {n["promotion"]: n for n in out["cart"]["nudges"]}
    shipping = nudges["demo-free-shipping"]
    assert "8.00 EUR" in shipping["text"]
    # "fits" closes the 8.00 EUR gap on its own, "cheap" does not; "gone" is out of stock.
    assert shipping["productIds"][:2] == ["fits", "cheap"]
    assert "gone" not in shipping["productIds"]
