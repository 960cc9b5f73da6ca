"""A late part is left out and named in `degraded`, never an error: a strategy that times out
while its product lookup is still in flight must not take the lookup down for the rest of the
request (it used to cancel the request's shared product reads, and `asyncio.CancelledError`
escaped from the composer: HTTP 500)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from shopfront.catalog.products import Product, get_products, upsert_products
from shopfront.extend.config import config_from_mapping
from shopfront.extend.host import PluginHost
from shopfront.extend.records import CallObservation, Degradation
from shopfront.platform.config import Settings
from shopfront.platform.store import Store
from shopfront.shoppers.context import PageType
from shopfront.storefront.composer import Storefront
from shopfront.storefront.request import StorefrontRequest
from shopfront.storefront.sources import ProfileSource
from strawberry.dataloader import DataLoader

from tests.plugin_doubles import SpecPlugin, list_recommender, product_doc

PLUGIN = SpecPlugin(
    recommenders=[
        list_recommender("slow", ["p1", "p2"]),  # its lookup outlives its 150 ms deadline
        list_recommender("steady", ["p1", "p3"]),  # asks for p1 too, with time to spare
    ]
)
CONFIG = config_from_mapping(
    {
        "slots": {"HOME": [{"name": "picks", "strategies": ["slow", "steady"]}]},
        "strategies": {"slow": {"timeout_ms": 150}, "steady": {"timeout_ms": 5000}},
    }
)


class NoProfiles(ProfileSource):
    async def load(self, user_id: str, now: object) -> None:
        return None


@pytest.fixture
async def host(settings: Settings, store: Store) -> AsyncIterator[PluginHost]:
    await upsert_products(store, [product_doc(p) for p in ("p1", "p2", "p3")])
    h = await PluginHost.start(
        settings, store, builtins=(), plugins=[("doubles", PLUGIN)], discover=False, config=CONFIG
    )
    try:
        yield h
    finally:
        await h.close()


async def test_a_strategy_timing_out_mid_lookup_leaves_the_answer_whole(
    host: PluginHost, store: Store, settings: Settings
) -> None:
    # The product read is held until the slow strategy's deadline has passed, as when the
    # database is slow: the timeout cancels the slow strategy while the read is in flight.
    timed_out = asyncio.Event()

    def observe(call: CallObservation) -> None:
        if call.strategy == "slow" and call.outcome == "timeout":
            timed_out.set()

    host.add_observer(observe)

    async def slow_batch(ids: list[str]) -> list[Product | None]:
        await timed_out.wait()
        found = await get_products(store, ids)
        return [found.get(i) for i in ids]

    loader: DataLoader[str, Product | None] = DataLoader(load_fn=slow_batch)
    sf = Storefront(host, store, settings, NoProfiles())
    try:
        result = await sf.compose(
            StorefrontRequest(PageType.HOME, session_id="s1"), request_id="r1", loader=loader
        )
    finally:
        await sf.close()

    assert Degradation("slow", "timeout after 150 ms") in result.degraded
    (picks,) = result.slots
    assert [i.product.id for i in picks.items] == ["p1", "p3"]  # steady's, served in full
    assert {r.strategy for i in picks.items for r in i.reasons} == {"steady"}
