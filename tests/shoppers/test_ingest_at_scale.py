"""10,000 events, 20% of them duplicates, sent through `trackEvents` in concurrent batches:
what is stored and what the profiles say must match an independent recount."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shopfront.platform.config import Settings
from shopfront.platform.store import Store
from shopfront.shoppers import decay, profiles
from shopfront.testing import GraphQLCall, test_settings

from tests.shoppers.event_helpers import seed_products

TOTAL = 10_000
DUPLICATE_SHARE = 0.2
BATCH = 500
CONCURRENCY = 4
USERS = 40
TRACK = """
mutation($events: [EventInput!]!) {
  trackEvents(input: {events: $events}) { accepted duplicates rejected }
}
"""
TYPES = [
    ("VIEW", 45),
    ("CLICK", 10),
    ("ADD_TO_CART", 10),
    ("REMOVE_FROM_CART", 4),
    ("PURCHASE", 8),
    ("SEARCH", 6),
    ("IMPRESSION", 8),
    ("RATING", 4),
    ("REVIEW", 2),
    ("NOT_INTERESTED", 3),
]


@pytest.fixture
def settings(mongo_uri: str) -> Settings:
    """This test is about correctness under concurrency, not latency: concurrent batches
    queue on the embedded server (slow, and sharing the machine), so one operation may wait
    longer than the default 5-second deadline."""
    return test_settings(mongo_uri, mongo_operation_timeout_ms=60_000)


def generate(product_ids: list[str], now: datetime) -> list[dict[str, Any]]:
    """Unique events, every one valid, with distinct timestamps (so "latest" is defined)."""
    rng = random.Random(20261127)
    kinds = [k for k, _ in TYPES]
    weights = [w for _, w in TYPES]
    unique = int(TOTAL * (1 - DUPLICATE_SHARE))
    offsets = rng.sample(range(1, 2 * 24 * 3600 * 1000), unique)  # ms within two days
    out = []
    for i, offset in enumerate(offsets):
        kind = rng.choices(kinds, weights)[0]
        user = f"shopper-{rng.randrange(USERS):02d}"
        e: dict[str, Any] = {
            "eventId": f"evt-{i:05d}",
            "type": kind,
            "userId": user,
            "sessionId": f"{user}-s{rng.randrange(3)}",
            "timestamp": (now - timedelta(milliseconds=offset)).isoformat(),
        }
        if kind == "SEARCH":
            e["query"] = rng.choice(["boots", "wool", "red cap"])
        else:
            e["productId"] = rng.choice(product_ids)
        if kind in ("ADD_TO_CART", "REMOVE_FROM_CART", "PURCHASE"):
            e["quantity"] = rng.randint(1, 3)
        if kind == "PURCHASE":
            e["price"] = {"amount": rng.randrange(100, 20_000), "currency": "EUR"}
            e["orderId"] = f"{user}-o{rng.randrange(30)}"
        if kind in ("RATING", "REVIEW"):
            e["rating"] = rng.randint(1, 5)
        if kind == "REVIEW":
            e["review"] = "ok"
        out.append(e)
    return out


def recount(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What each shopper's profile must say, computed independently of the service."""
    per: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "counts": Counter(),
            "purchases": Counter(),
            "orders": set(),
            "sessions": set(),
            "spent": 0,
            "price_n": 0,
            "price_sum": 0,
            "views": {},
            "ratings": {},
            "not_interested": set(),
            "times": [],
        }
    )
    for e in events:
        p = per[e["userId"]]
        kind = e["type"].lower()
        t = datetime.fromisoformat(e["timestamp"])
        p["counts"][kind] += 1
        p["sessions"].add(e["sessionId"])
        p["times"].append(t)
        pid = e.get("productId")
        if kind == "purchase":
            p["purchases"][pid] += 1
            p["orders"].add(e["orderId"])
            p["spent"] += e["price"]["amount"] * e["quantity"]
            p["price_n"] += 1
            p["price_sum"] += e["price"]["amount"]
        if kind == "view":
            p["views"][pid] = max(t, p["views"].get(pid, t))
        if kind in ("rating", "review") and (pid not in p["ratings"] or t > p["ratings"][pid][1]):
            p["ratings"][pid] = (e["rating"], t)
        if kind == "not_interested":
            p["not_interested"].add(pid)
    return per


@pytest.mark.concurrency
@pytest.mark.slow
async def test_ten_thousand_events_with_duplicates_in_concurrent_batches(
    store: Store, graphql: GraphQLCall
) -> None:
    # Many shoppers per batch: the merchant's backend sending events server-side (merchant key).
    product_ids = await seed_products(store, extra=40)
    now = datetime.now(UTC).replace(microsecond=0)  # whole ms: what MongoDB stores
    unique = generate(product_ids, now)
    rng = random.Random(7)
    sent = unique + [rng.choice(unique) for _ in range(TOTAL - len(unique))]
    rng.shuffle(sent)
    batches = [sent[i : i + BATCH] for i in range(0, TOTAL, BATCH)]

    gate = asyncio.Semaphore(CONCURRENCY)

    async def send(batch: list[dict[str, Any]]) -> dict[str, int]:
        async with gate:
            res = await graphql(TRACK, {"events": batch})
        assert "errors" not in res, res["errors"]
        tally: dict[str, int] = res["data"]["trackEvents"]
        return tally

    tallies = await asyncio.gather(*(send(b) for b in batches))  # timing: bench/ingest.py

    assert sum(t["accepted"] for t in tallies) == len(unique)
    assert sum(t["duplicates"] for t in tallies) == TOTAL - len(unique)
    assert sum(t["rejected"] for t in tallies) == 0
    assert await store.collection("events").count_documents({}) == len(unique)

    expected = recount(unique)
    docs = {
        d["user_id"]: d
        for d in await store.collection("profiles").find({}, {"aff": 0}).to_list(None)
    }
    assert set(docs) == set(expected)
    read_at = now + timedelta(minutes=1)
    weights = store.settings.event_weight_map
    half_life = decay.half_life_seconds(store.settings.affinity_half_life_days)
    facts = await profiles.product_facts(store, product_ids)
    for user, want in expected.items():
        doc = docs[user]
        assert doc["counts"] == dict(want["counts"]), user
        assert doc["orders"] == len(want["orders"]), user
        assert doc["sessions"] == len(want["sessions"]), user
        assert doc.get("spent", {}).get("EUR", 0) == want["spent"], user
        if want["price_n"]:
            assert doc["price"]["EUR"]["n"] == want["price_n"]
            assert doc["price"]["EUR"]["sum"] == want["price_sum"]
        assert doc["first_seen"] == min(want["times"])
        assert doc["last_seen"] == max(want["times"])

        profile = await profiles.load_profile(store, user, read_at)
        assert profile is not None
        assert {p: v.count for p, v in profile.purchases.items()} == dict(want["purchases"])
        newest = sorted(want["views"], key=lambda p: want["views"][p], reverse=True)
        assert list(profile.recently_viewed) == newest[: store.settings.recently_viewed_max]
        assert dict(profile.ratings) == {p: r for p, (r, _) in want["ratings"].items()}
        assert profile.not_interested == frozenset(want["not_interested"])

        # Brand affinities against the direct formula over this shopper's events.
        brands: dict[str, float] = defaultdict(float)
        for e in unique:
            if e["userId"] != user or "productId" not in e:
                continue
            w = profiles.event_weight(
                {"type": e["type"].lower(), "rating": e.get("rating")}, weights
            )
            brand = facts[e["productId"]].brand
            t = datetime.fromisoformat(e["timestamp"])
            brands[brand] += decay.decayed_weight(w, t, half_life, read_at)
        got = dict(profile.brand_affinities)
        for brand, value in brands.items():
            assert got.get(brand, 0.0) == pytest.approx(value, rel=1e-9, abs=1e-9), (user, brand)

    # Anonymous daily counts agree too.
    stats: Counter[tuple[str, str, str]] = Counter()
    for e in unique:
        if "productId" in e:
            day = datetime.fromisoformat(e["timestamp"]).date().isoformat()
            stats[(e["productId"], day, e["type"].lower())] += 1
    stored: Counter[tuple[str, str, str]] = Counter()
    for d in await store.collection("product_stats").find().to_list(None):
        for kind, n in d["counts"].items():
            stored[(d["product_id"], d["day"].date().isoformat(), kind)] += n
    assert stored == stats
