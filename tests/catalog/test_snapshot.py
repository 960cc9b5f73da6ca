"""The catalog in memory: two app instances on one database both serve a change made through
either of them (or straight into the collection) within 2 s; polling does the same where
change streams are off."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from shopfront.app import create_app
from shopfront.catalog.products import ProductFilter, upsert_products
from shopfront.catalog.snapshot import CatalogSnapshot
from shopfront.platform.config import Settings
from shopfront.platform.store import Store
from shopfront.runtime import Runtime
from shopfront.testing import GraphQLCall, graphql_caller

UPSERT = (
    """mutation($p: [ProductInput!]!) { upsertProducts(input: {products: $p}) { id status } }"""
)
PRODUCT = """query($id: ID!) { product(id: $id) { id price { amount } inStock } }"""
LIST = """{ products(first: 10) { nodes { id } } }"""


def product(pid: str, amount: int = 1000, stock: int = 5) -> dict[str, Any]:
    return {
        "id": pid,
        "title": f"Product {pid}",
        "price": {"amount": amount, "currency": "EUR"},
        "stock": stock,
        "categoryPath": ["Shoes"],
    }


async def within_2s(snapshot: CatalogSnapshot, done: Callable[[CatalogSnapshot], bool]) -> None:
    async with asyncio.timeout(2):
        await snapshot.wait_until(done)


@pytest.fixture
async def two(
    settings: Settings, store: Store, merchant_key: str
) -> AsyncIterator[list[tuple[Runtime, GraphQLCall]]]:
    apps = [create_app(settings), create_app(settings)]
    async with LifespanManager(apps[0]), LifespanManager(apps[1]):
        out = []
        for app in apps:
            transport = httpx.ASGITransport(app=app)
            client = httpx.AsyncClient(transport=transport, base_url="http://shopfront.test")
            out.append((app.state.runtime, graphql_caller(client, merchant_key)))
        yield out
        for app in apps:
            assert app.state.runtime.catalog.mode == "change_stream"


async def test_a_write_on_one_instance_reaches_both(
    two: list[tuple[Runtime, GraphQLCall]], store: Store
) -> None:
    (a, call_a), (b, call_b) = two
    res = await call_a(UPSERT, {"p": [product("p1"), product("p2")]})
    assert [r["status"] for r in res["data"]["upsertProducts"]] == ["CREATED", "CREATED"]
    # The writing instance serves its own write at once; the other within 2 s.
    assert (await call_a(PRODUCT, {"id": "p1"}))["data"]["product"]["price"]["amount"] == 1000
    assert b.catalog is not None
    await within_2s(b.catalog, lambda s: s.get("p2") is not None)
    assert (await call_b(LIST))["data"]["products"]["nodes"] == [{"id": "p1"}, {"id": "p2"}]

    # A price and a stock change written straight to the collection (another writer).
    await store.products.update_one({"id": "p1"}, {"$set": {"price.amount": 750, "stock": 0}})
    for rt in (a, b):
        assert rt.catalog is not None
        await within_2s(rt.catalog, lambda s: (p := s.get("p1")) is not None and not p.in_stock)
    got = (await call_b(PRODUCT, {"id": "p1"}))["data"]["product"]
    assert got == {"id": "p1", "price": {"amount": 750}, "inStock": False}

    # A delete through B disappears from A.
    res = await call_b('mutation { deleteProducts(input: {productIds: ["p2"]}) { deleted } }')
    assert res["data"]["deleteProducts"]["deleted"] == 1
    assert a.catalog is not None
    await within_2s(a.catalog, lambda s: s.get("p2") is None)
    assert (await call_a(LIST))["data"]["products"]["nodes"] == [{"id": "p1"}]
    assert (await call_a(PRODUCT, {"id": "p2"}))["data"]["product"] is None


def price(snapshot: CatalogSnapshot, pid: str) -> int | None:
    found = snapshot.get(pid)
    return found.price.amount if found is not None else None


async def test_polling_follows_upserts_and_deletes(store: Store) -> None:
    await upsert_products(store, [product("p1"), product("p2")])
    snapshot = CatalogSnapshot(store, poll_interval_s=0.05, change_streams=False)
    await snapshot.start()
    try:
        assert snapshot.mode == "polling" and len(snapshot) == 2
        await upsert_products(store, [product("p1", amount=1234), product("p3")])
        await within_2s(snapshot, lambda s: s.get("p3") is not None and price(s, "p1") == 1234)
        await store.products.delete_one({"id": "p2"})
        await within_2s(snapshot, lambda s: s.get("p2") is None)
        assert [p.id for p in snapshot.page(ProductFilter(), 10).items] == ["p1", "p3"]
    finally:
        await snapshot.close()


async def test_unknown_ids_are_read_through_once(store: Store) -> None:
    snapshot = CatalogSnapshot(store, change_streams=False, poll_interval_s=60)
    await snapshot.start()
    try:
        await upsert_products(store, [product("late")])
        assert snapshot.get("late") is None  # written after the load, not yet polled
        assert set(await snapshot.lookup(["late", "nope"])) == {"late"}
        assert snapshot.get("late") is not None
    finally:
        await snapshot.close()


def test_filter_in_memory_matches_the_query() -> None:
    from shopfront.catalog.products import validate_product

    shoe = validate_product(
        {**product("s", amount=500, stock=0), "category_path": ["Shoes", "Run"], "brand": "A"}
    )
    assert ProductFilter(category_path=("Shoes",), brands=("A",)).matches(shoe)
    assert not ProductFilter(category_path=("Shoes", "Trail")).matches(shoe)
    assert not ProductFilter(in_stock=True).matches(shoe)
    assert ProductFilter(in_stock=False, min_price=500, max_price=500).matches(shoe)
    assert not ProductFilter(currency="USD").matches(shoe)
    assert not ProductFilter(ids=("x",)).matches(shoe)
    assert ProductFilter(title_contains="PRODUCT s").matches(shoe)
    assert not ProductFilter(title_contains="boot").matches(shoe)


async def test_the_load_reads_in_pages(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from shopfront.catalog import snapshot as snapshot_module

    monkeypatch.setattr(snapshot_module, "LOAD_PAGE", 2)
    await upsert_products(store, [product(f"p{i}") for i in range(5)])
    snapshot = CatalogSnapshot(store, change_streams=False, poll_interval_s=3600)
    await snapshot.start()
    try:
        assert sorted(p.id for p in snapshot.page(ProductFilter(), 10).items) == [
            f"p{i}" for i in range(5)
        ]
    finally:
        await snapshot.close()
