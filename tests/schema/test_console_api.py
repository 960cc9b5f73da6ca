"""The merchant fields the console is built on: a storefront preview (a chosen experiment
variant, nothing recorded, merchant keys only), a shopper's recent events and segments, and
switching a promotion on and off."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from shopfront.catalog.products import upsert_products
from shopfront.experiments.definitions import EXPOSURES
from shopfront.platform.keys import Role, create_key
from shopfront.platform.store import Store
from shopfront.storefront.served_log import RECOMMENDATIONS
from shopfront.testing import GraphQLCall, StorefrontClientFactory, graphql_caller

from tests.plugin_doubles import SpecPlugin, list_recommender, product_doc

PLUGIN = SpecPlugin(recommenders=[list_recommender("trending", ["p1", "p2", "p3"])])
STOREFRONT = """
query($input: StorefrontInput!) {
  storefront(input: $input) { experiments { experiment variant } slots { name items { position } } }
}"""
CREATE = """
mutation($input: CreateExperimentInput!) { createExperiment(input: $input) { id } }"""
START = "mutation($id: ID!) { startExperiment(input: {experimentId: $id}) { status } }"


async def _shop(
    store: Store, storefront_client: StorefrontClientFactory
) -> tuple[Any, GraphQLCall, GraphQLCall]:
    await upsert_products(store, [product_doc(f"p{i}") for i in range(1, 4)])
    sf = await storefront_client([("lists", PLUGIN)])
    _, merchant = await create_key(store, Role.MERCHANT, "console")
    return sf, graphql_caller(sf.http, merchant), graphql_caller(sf.http, sf.key)


async def _running_experiment(merchant: GraphQLCall) -> str:
    res = await merchant(
        CREATE,
        {
            "input": {
                "name": "trending-size",
                "traffic": 1.0,
                "variants": [
                    {"name": "control", "weight": 1, "control": True},
                    {"name": "short", "weight": 1, "slots": [{"slot": "trending", "limit": 1}]},
                ],
            }
        },
    )
    exp_id: str = res["data"]["createExperiment"]["id"]
    assert (await merchant(START, {"id": exp_id}))["data"]["startExperiment"]["status"] == (
        "RUNNING"
    )
    return exp_id


async def test_a_preview_shows_the_chosen_variant_and_records_nothing(
    store: Store, storefront_client: StorefrontClientFactory
) -> None:
    sf, merchant, _ = await _shop(store, storefront_client)
    await _running_experiment(merchant)
    page = {"page": "HOME", "userId": "u1", "slots": [{"name": "trending"}]}

    own = (await merchant(STOREFRONT, {"input": {**page, "preview": {}}}))["data"]["storefront"]
    [served] = own["experiments"]
    other = "short" if served["variant"] == "control" else "control"
    chosen = await merchant(
        STOREFRONT,
        {
            "input": {
                **page,
                "preview": {"variants": [{"experiment": "trending-size", "variant": other}]},
            }
        },
    )
    answer = chosen["data"]["storefront"]
    assert answer["experiments"] == [{"experiment": "trending-size", "variant": other}]
    sizes = {"control": 3, "short": 1}
    assert len(answer["slots"][0]["items"]) == sizes[other]
    await sf.composer.flush()
    assert await store.collection(EXPOSURES).count_documents({}) == 0
    assert await store.collection(RECOMMENDATIONS).count_documents({}) == 0

    # The same page without preview is a page view: served and exposed, in the own variant.
    plain = (await merchant(STOREFRONT, {"input": page}))["data"]["storefront"]
    assert plain["experiments"] == [served]
    await sf.composer.flush()
    assert await store.collection(EXPOSURES).count_documents({}) >= 1
    assert await store.collection(RECOMMENDATIONS).count_documents({}) == 1


async def test_a_preview_needs_a_merchant_key_and_a_real_variant(
    store: Store, storefront_client: StorefrontClientFactory
) -> None:
    _, merchant, storefront = await _shop(store, storefront_client)
    await _running_experiment(merchant)
    base = {"page": "HOME", "sessionId": "s1"}
    refused = await storefront(STOREFRONT, {"input": {**base, "preview": {}}})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    for variants, words in [
        ([{"experiment": "nope", "variant": "control"}], "no running experiment 'nope'"),
        ([{"experiment": "trending-size", "variant": "x"}], "has no variant 'x'"),
        (
            [{"experiment": "trending-size", "variant": "short"}] * 2,
            "each experiment may appear once",
        ),
    ]:
        res = await merchant(STOREFRONT, {"input": {**base, "preview": {"variants": variants}}})
        assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert words in res["errors"][0]["message"]


TRACK = "mutation($events: [EventInput!]!) { trackEvents(input: {events: $events}) { accepted } }"
RECENT = """
query($u: ID!) { recentEvents(userId: $u, first: 2) { eventId type productId query } }"""


async def test_recent_events_are_the_shoppers_newest_first(
    store: Store, storefront_client: StorefrontClientFactory
) -> None:
    _, merchant, storefront = await _shop(store, storefront_client)
    now = datetime.now(UTC)
    events = [
        {"eventId": "e1", "type": "VIEW", "userId": "u1", "productId": "p1"},
        {"eventId": "e2", "type": "SEARCH", "userId": "u1", "query": "running shoes"},
        {"eventId": "e3", "type": "VIEW", "userId": "u1", "productId": "p2"},
        {"eventId": "e4", "type": "VIEW", "userId": "u2", "productId": "p3"},
    ]
    for i, e in enumerate(events):
        e["timestamp"] = (now - timedelta(minutes=10 - i)).isoformat()
    assert (await merchant(TRACK, {"events": events}))["data"]["trackEvents"]["accepted"] == 4
    res = await merchant(RECENT, {"u": "u1"})
    assert res["data"]["recentEvents"] == [
        {"eventId": "e3", "type": "view", "productId": "p2", "query": None},
        {"eventId": "e2", "type": "search", "productId": None, "query": "running shoes"},
    ]
    refused = await storefront(RECENT, {"u": "u1"})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


PROMOTION = """
mutation($input: PromotionInput!) { upsertPromotion(input: $input) { id active } }"""
SEGMENTS = """
query($u: ID!) { shopperSegments(userId: $u) { kind id title member reason } }"""
SET_ACTIVE = """
mutation($id: ID!, $on: Boolean!) {
  setPromotionActive(input: {promotionId: $id, active: $on}) { id active }
}"""


async def test_segments_say_which_targeted_offers_a_shopper_is_in_and_promotions_toggle(
    store: Store, storefront_client: StorefrontClientFactory
) -> None:
    _, merchant, storefront = await _shop(store, storefront_client)
    rule = {"orderDiscount": {"discount": {"percent": "10"}}}
    for pid, first_order in [("welcome", True), ("loyal", False)]:
        res = await merchant(
            PROMOTION,
            {
                "input": {
                    "id": pid,
                    "title": f"{pid} 10%",
                    "rule": rule,
                    "conditions": {"segment": {"firstOrder": first_order}},
                }
            },
        )
        assert res["data"]["upsertPromotion"]["active"] is True
    await merchant(PROMOTION, {"input": {"id": "everyone", "title": "all 10%", "rule": rule}})
    await merchant(
        TRACK,
        {
            "events": [
                {
                    "eventId": "v1",
                    "type": "VIEW",
                    "userId": "new-shopper",
                    "productId": "p1",
                    "timestamp": datetime.now(UTC).isoformat(),
                }
            ]
        },
    )
    found = (await merchant(SEGMENTS, {"u": "new-shopper"}))["data"]["shopperSegments"]
    by_id = {s["id"]: s for s in found}
    assert set(by_id) == {"welcome", "loyal"}  # "everyone" targets no segment
    assert by_id["welcome"]["member"] is True and by_id["welcome"]["reason"] is None
    assert by_id["loyal"]["member"] is False and by_id["loyal"]["reason"]
    assert by_id["welcome"]["kind"] == "PROMOTION"

    off = await merchant(SET_ACTIVE, {"id": "welcome", "on": False})
    assert off["data"]["setPromotionActive"] == {"id": "welcome", "active": False}
    found = (await merchant(SEGMENTS, {"u": "new-shopper"}))["data"]["shopperSegments"]
    assert {s["id"] for s in found} == {"loyal"}  # only active offers count
    on = await merchant(SET_ACTIVE, {"id": "welcome", "on": True})
    assert on["data"]["setPromotionActive"]["active"] is True
    missing = await merchant(SET_ACTIVE, {"id": "nope", "on": True})
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    refused = await storefront(SET_ACTIVE, {"id": "welcome", "on": False})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


TITLES = """
query($f: ProductFilterInput) { products(filter: $f, first: 10) { nodes { id } } }"""


async def test_products_by_title_for_merchants(
    store: Store, storefront_client: StorefrontClientFactory
) -> None:
    sf, merchant, storefront = await _shop(store, storefront_client)
    await upsert_products(
        store,
        [
            product_doc("t1", title="Trail Runner GTX"),
            product_doc("t2", title="Road runner"),
            product_doc("t3", title="Runner (2.0)"),
            product_doc("t4", title="Runner 200", active=False),
        ],
    )
    # Written straight to the collection: the instance's in-memory catalog has them once
    # their change arrives (within 2 s).
    catalog = sf.runtime.catalog
    assert catalog is not None
    async with asyncio.timeout(2):
        await catalog.wait_until(lambda c: c.get("t4") is not None)

    async def ids(text: str, **more: Any) -> list[str]:
        res = await merchant(TITLES, {"f": {"titleContains": text, **more}})
        return [n["id"] for n in res["data"]["products"]["nodes"]]

    assert await ids("RUNNER") == ["t1", "t2", "t3"]
    assert await ids("(2.0)") == ["t3"]  # the text is literal, not a pattern
    assert await ids("runner 2", includeInactive=True) == ["t4"]
    assert await ids("nothing like it") == []
    refused = await storefront(TITLES, {"f": {"titleContains": "runner"}})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    blank = await merchant(TITLES, {"f": {"titleContains": "  "}})
    assert blank["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
