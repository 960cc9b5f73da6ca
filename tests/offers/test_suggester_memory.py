"""Nudge suggestions from the in-memory catalog pick exactly what the query on the collection
picks: the same pool (price order from the missing amount, in stock, active, in scope, not in
the cart) and the same ranking."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from shopfront.catalog.products import Product, upsert_products
from shopfront.catalog.snapshot import CatalogSnapshot
from shopfront.offers.contract import ProductScope
from shopfront.offers.promotions import CatalogSuggester
from shopfront.platform.money import Money
from shopfront.platform.store import Store
from shopfront.shoppers.profile_view import Profile
from shopfront.testing import make_context

CATEGORIES = [["Shoes", "Running"], ["Shoes", "Trail"], ["Socks"], ["Hats"]]


async def test_memory_and_collection_agree(store: Store) -> None:
    rng = random.Random(3)
    raws = [
        {
            "id": f"p{i:02d}",
            "title": f"Product {i}",
            "price": {"amount": rng.choice([500, 900, 1500, 2500, 4000]), "currency": "EUR"},
            "stock": rng.choice([0, 3, 8]),
            "active": rng.random() > 0.1,
            "category_path": rng.choice(CATEGORIES),
            "brand": rng.choice(["Stride", "Knit"]),
        }
        for i in range(60)
    ]
    raws.append({**raws[0], "id": "usd", "price": {"amount": 1500, "currency": "USD"}})
    await upsert_products(store, raws)
    snapshot = CatalogSnapshot(store, change_streams=False, poll_interval_s=3600)
    await snapshot.start()
    try:
        in_cart = Product("p01", "cart item", Money(1500, "EUR"), stock=1)
        profile = Profile(
            user_id="shopper-1",
            as_of=datetime.now(UTC),
            category_affinities=(("Socks", 2.0), ("Shoes > Trail", 1.0)),
        )
        ctx = make_context([in_cart], cart=[("p01", 1)], profile=profile)
        scopes = [
            ProductScope(),
            ProductScope(categories=frozenset({("Shoes",)})),
            ProductScope(brands=frozenset({"Knit"}), product_ids=frozenset({"p05", "p07"})),
            ProductScope(product_ids=frozenset({"nothing-like-it"})),
        ]
        from_db = CatalogSuggester(store, pool=10)
        from_memory = CatalogSuggester(store, pool=10, snapshot=snapshot)
        for scope in scopes:
            for missing in (None, Money(1000, "EUR"), Money(3000, "EUR"), Money(9999, "EUR")):
                want = await from_db(ctx, "spend", missing, scope, 4)
                got = await from_memory(ctx, "spend", missing, scope, 4)
                assert got == want, (scope, missing)
        assert await from_memory(ctx, "spend", Money(1000, "EUR"), ProductScope(), 4)
    finally:
        await snapshot.close()
