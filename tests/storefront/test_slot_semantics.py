"""What a storefront can rely on about slots: every slot comes back, marked ``empty`` when it
has no items and ``degraded`` when one of its strategies was left out; a request's slots
replace the page's slots (``mode: REPLACE``, the default) or are added to them (``ADD``)."""

from __future__ import annotations

from typing import Any

import pytest
from shopfront.catalog.products import upsert_products
from shopfront.platform.store import Store
from shopfront.recommend.contract import RecommenderSpec
from shopfront.testing import StorefrontClient, StorefrontClientFactory

from tests.plugin_doubles import Raising, SpecPlugin, list_recommender, product_doc

# Sessions sent with a storefront key must be unguessable (a UUIDv4).
SESSION = "0f8fad5b-d9cb-469f-a165-70867728950e"


SELECTION = "slots { name empty degraded items { product { id } } } degraded { strategy reason }"

PLUGIN = SpecPlugin(
    recommenders=[
        list_recommender("picks", ["p1", "p2"]),
        list_recommender("nothing", []),
        RecommenderSpec("raiser", Raising, "raises"),
    ]
)
PAGE_SLOTS = {
    "slots": {
        "HOME": [
            {"name": "top", "title": "Top", "strategies": ["picks"]},
            {"name": "quiet", "title": "Quiet", "strategies": ["nothing"]},
        ]
    }
}


@pytest.fixture
async def sf(store: Store, storefront_client: StorefrontClientFactory) -> StorefrontClient:
    await upsert_products(store, [product_doc(f"p{i}") for i in range(1, 4)])
    return await storefront_client([("slots", PLUGIN)], config=PAGE_SLOTS)


def _by_name(out: dict[str, Any]) -> dict[str, tuple[bool, bool, list[str]]]:
    return {
        s["name"]: (s["empty"], s["degraded"], [i["product"]["id"] for i in s["items"]])
        for s in out["slots"]
    }


async def test_every_slot_comes_back_marked_empty_or_degraded(sf: StorefrontClient) -> None:
    slots = [
        {"name": "good", "strategy": "picks"},
        {"name": "nothing_found", "strategy": "nothing"},
        {"name": "failed", "strategy": "raiser"},
        {"name": "missing", "strategy": "not_installed"},
    ]
    out = await sf.query({"sessionId": SESSION, "page": "HOME", "slots": slots}, SELECTION)
    assert _by_name(out) == {
        "good": (False, False, ["p1", "p2"]),
        "nothing_found": (True, False, []),  # nothing to show, but nothing went wrong
        "failed": (True, True, []),
        "missing": (True, True, []),
    }
    assert {d["strategy"] for d in out["degraded"]} == {"raiser", "not_installed"}


async def test_a_slot_that_lost_one_of_its_strategies_is_degraded_but_not_empty(
    store: Store, storefront_client: StorefrontClientFactory
) -> None:
    await upsert_products(store, [product_doc("p1"), product_doc("p2")])
    config = {
        "slots": {"HOME": [{"name": "mixed", "title": "M", "strategies": ["picks", "raiser"]}]}
    }
    sf = await storefront_client([("slots", PLUGIN)], config=config)
    out = await sf.query({"sessionId": SESSION, "page": "HOME"}, SELECTION)
    assert _by_name(out) == {"mixed": (False, True, ["p1", "p2"])}


async def test_request_slots_replace_the_page_slots_by_default(sf: StorefrontClient) -> None:
    extra = [{"name": "again", "strategy": "picks", "limit": 1}]
    default = await sf.query({"sessionId": SESSION, "page": "HOME", "slots": extra}, SELECTION)
    replaced = await sf.query(
        {"sessionId": SESSION, "page": "HOME", "slots": extra, "mode": "REPLACE"}, SELECTION
    )
    assert _by_name(default) == _by_name(replaced) == {"again": (False, False, ["p1"])}
    nothing = await sf.query({"sessionId": SESSION, "page": "HOME", "slots": []}, SELECTION)
    assert nothing["slots"] == []


async def test_add_mode_keeps_the_page_slots_and_appends_the_requested_ones(
    sf: StorefrontClient,
) -> None:
    slots = [
        {"name": "again", "strategy": "picks", "limit": 1},
        {"name": "top", "limit": 1},  # a page slot: changed where it stands, not added twice
    ]
    out = await sf.query(
        {"sessionId": SESSION, "page": "HOME", "slots": slots, "mode": "ADD"}, SELECTION
    )
    assert [s["name"] for s in out["slots"]] == ["top", "quiet", "again"]
    assert _by_name(out)["top"] == (False, False, ["p1"])
    page_only = await sf.query({"sessionId": SESSION, "page": "HOME", "mode": "ADD"}, SELECTION)
    assert [s["name"] for s in page_only["slots"]] == ["top", "quiet"]
    empty_add = await sf.query(
        {"sessionId": SESSION, "page": "HOME", "slots": [], "mode": "ADD"}, SELECTION
    )
    assert [s["name"] for s in empty_add["slots"]] == ["top", "quiet"]


async def test_an_unknown_mode_is_a_graphql_error(sf: StorefrontClient) -> None:
    body = await sf.raw({"sessionId": SESSION, "page": "HOME", "mode": "MERGE"}, SELECTION)
    assert body.get("errors") and "MERGE" in body["errors"][0]["message"]
