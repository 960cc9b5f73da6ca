"""Search and new products end to end: the SEARCH page, "Because you searched", and a product
upserted through the API recommended as "New for you" without retraining."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shopfront.catalog.products import upsert_products
from shopfront.platform.config import Settings
from shopfront.platform.keys import Role, create_key
from shopfront.platform.store import Store
from shopfront.recommend.fitting import builtin_recommenders, load_training_data
from shopfront.recommend.training import train
from shopfront.shoppers.events import ingest_events
from shopfront.testing import StorefrontClientFactory

pytestmark = pytest.mark.slow

SESSION = uuid.uuid4().hex  # storefront session ids must be unguessable
SELECTION = "slots { name items { product { id } reasons { code text } } } degraded { strategy }"
UPSERT = """
mutation($products: [ProductInput!]!) { upsertProducts(input: {products: $products}) { id status } }
"""


def item(pid: str, title: str, category: list[str], brand: str) -> dict[str, Any]:
    return {
        "id": pid,
        "title": title,
        "price": {"amount": 4000, "currency": "EUR"},
        "category_path": category,
        "brand": brand,
        "stock": 5,
    }


CATALOG = [
    item("trail1", "Northpace Trail Runner", ["Shoes", "Trail"], "Northpace"),
    item("trail2", "Ridge Trail Shoe", ["Shoes", "Trail"], "Ridge"),
    item("road1", "City Road Runner", ["Shoes", "Road"], "Swift"),
    item("tent1", "Summit Dome Tent", ["Outdoor", "Tents"], "Peak"),
    item("mug1", "Enamel Camp Mug", ["Outdoor", "Kitchen"], "Peak"),
]


async def seed(store: Store, settings: Settings) -> None:
    await upsert_products(store, CATALOG)
    # The catalog is old; only what is upserted later counts as new.
    old = datetime.now(UTC) - timedelta(days=200)
    await store.products.update_many({}, {"$set": {"created_at": old}})
    now = datetime.now(UTC) - timedelta(hours=1)
    events = [
        {"type": "search", "user_id": "hiker", "query": "dome tent", "timestamp": now},
        {"type": "view", "user_id": "runner", "product_id": "trail1", "timestamp": now},
        *[
            {"type": "view", "user_id": f"u{i}", "product_id": pid, "timestamp": now}
            for i in range(4)
            for pid in ("trail1", "trail2", "tent1")
        ],
    ]
    results = await ingest_events(
        store, settings, [{**e, "event_id": f"e{i}"} for i, e in enumerate(events)]
    )
    assert all(r.reason is None for r in results), results
    data = await load_training_data(store, window_days=30)
    await train(store, settings, builtin_recommenders(settings, store), data=data)


def shown(answer: dict[str, Any], slot: str) -> dict[str, list[str]]:
    found = next(s for s in answer["slots"] if s["name"] == slot)
    return {i["product"]["id"]: [r["text"] for r in i["reasons"]] for i in found["items"]}


async def test_search_page_because_you_searched_and_new_for_you(
    store: Store, settings: Settings, storefront_client: StorefrontClientFactory
) -> None:
    await seed(store, settings)
    sf = await storefront_client(builtins=True)

    results = await sf.query(
        {"page": "SEARCH", "sessionId": SESSION, "searchQuery": "trail"}, SELECTION
    )
    matches = shown(results, "search_results")
    assert set(matches) == {"trail1", "trail2"}
    assert all("Matches 'trail'" in texts for texts in matches.values())

    home = await sf.query(
        {"page": "HOME", "userId": "hiker",
         "slots": [{"name": "searched", "strategy": "because_you_searched"}]},
        SELECTION,
    )  # fmt: skip
    assert shown(home, "searched") == {"tent1": ["Because you searched 'dome tent'"]}

    _, merchant = await create_key(store, Role.MERCHANT, "merchant")
    new = {**item("trail3", "Northpace Trail Racer", ["Shoes", "Trail"], "Northpace")}
    new["categoryPath"] = new.pop("category_path")
    added = await sf.http.post(
        "/graphql",
        json={"query": UPSERT, "variables": {"products": [new]}},
        headers={"authorization": f"Bearer {merchant}"},
    )
    assert added.json()["data"]["upsertProducts"][0]["status"] == "CREATED"
    ask = {
        "page": "HOME",
        "userId": "runner",
        "slots": [{"name": "new", "strategy": "new_for_you"}],
    }
    fresh = shown(await sf.query(ask, SELECTION), "new")
    assert list(fresh) == ["trail3"]  # no training in between
    assert fresh["trail3"][0] == "New, and like Northpace Trail Runner"
    search = {"page": "SEARCH", "sessionId": SESSION, "searchQuery": "northpace"}
    found = shown(await sf.query(search, SELECTION), "search_results")
    assert "trail3" in found
