"""Nudges suggest products chosen by the recommenders: ones that count towards the promotion,
in stock, and (for a spend nudge) closing the gap first."""

from __future__ import annotations

from collections.abc import Sequence

from service.catalog import upsert_products
from service.config import Settings
from service.hookspecs import hookimpl
from service.plugin_api import Candidate, Reason, RecommenderSpec, RequestContext, Slot
from service.promotions import seed_demo_promotions
from service.store import Store
from service.testing import StorefrontClientFactory


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
