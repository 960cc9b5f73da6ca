"""Served quality equals offline quality: what the storefront query returns for a slot is what
the same trained model and blend rank offline, so it scores the same (nothing lost to caps,
exclusions, timeouts or candidate limits on the way)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import shopfront.plugins.recommenders as builtin
from shopfront.catalog.products import Product, upsert_products
from shopfront.platform.config import Settings
from shopfront.platform.store import Store
from shopfront.plugins.recommenders.blend import blend
from shopfront.recommend.contract import Slot
from shopfront.recommend.evaluation import MemoryCatalog, ranking_metrics
from shopfront.recommend.fitting import builtin_recommenders, load_training_data
from shopfront.recommend.training import train, tune_shop
from shopfront.shoppers.context import PageType, RequestContext
from shopfront.shoppers.events import ingest_events
from shopfront.shoppers.profiles import load_profile
from shopfront.testing import StorefrontClient, StorefrontClientFactory

from bench.synthetic import repeat_shop

pytestmark = pytest.mark.slow

SHOPPERS = 20
SELECTION = "slots { name items { product { id } reasons { code text } } } degraded { strategy }"


def split_last_basket(
    docs: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, frozenset[str]]]:
    """Everything before each shopper's last order, and that order's products (the truth)."""
    last: dict[str, str] = {}
    for doc in docs:
        if doc["type"] == "purchase":
            last[str(doc["user_id"])] = str(doc["order_id"])
    truth: dict[str, set[str]] = defaultdict(set)
    cut: dict[str, datetime] = {}
    for doc in docs:
        user = str(doc["user_id"])
        if doc["type"] == "purchase" and doc["order_id"] == last[user]:
            truth[user].add(str(doc["product_id"]))
            cut.setdefault(user, doc["timestamp"])
    before = [d for d in docs if d["timestamp"] < cut.get(str(d["user_id"]), d["timestamp"])]
    return before, {u: frozenset(items) for u, items in truth.items()}


async def seed_shop(store: Store, settings: Settings) -> tuple[list[Product], dict[str, Any]]:
    products, docs = repeat_shop(SHOPPERS, 90, days=90, seed=3)
    # The shop's history ends an hour ago (the storefront asks at the real time).
    shift = datetime.now(UTC) - timedelta(hours=1) - max(d["timestamp"] for d in docs)
    events = [
        {**{k: v for k, v in d.items() if v is not None}, "timestamp": d["timestamp"] + shift}
        for d in docs
    ]
    history, truth = split_last_basket(events)
    await upsert_products(store, [p.to_doc() for p in products])
    price = {p.id: {"amount": p.price.amount, "currency": p.price.currency} for p in products}
    for i, doc in enumerate(history):
        doc["event_id"] = f"e{i}"
        if doc["type"] == "purchase":
            doc["price"] = price[doc["product_id"]]
    results = await ingest_events(store, settings, history)
    assert all(r.reason is None for r in results), [r for r in results if r.reason][:3]
    return products, truth


async def offline(
    sf: StorefrontClient, slot: Slot, user: str, products: Mapping[str, Product]
) -> list[str]:
    """The slot ranked outside the service: the service's own fitted strategy objects, asked
    directly, and the plugin's blend policy."""
    now = datetime.now(UTC)
    ctx = RequestContext(
        request_id="offline",
        now=now,
        page=PageType.HOME,
        currency="EUR",
        catalog=MemoryCatalog(products),
        user_id=user,
        profile=await load_profile(sf.runtime.store, user, now),
    )
    found = {}
    for name in slot.strategies:
        hosted = sf.host.strategy(name)
        assert hosted is not None and hosted.obj is not None
        found[name] = await hosted.obj.recommend(ctx, slot)
    ranked = blend(ctx, slot, found, products, builtin.current_policy())
    return [c.product_id for c in ranked]


async def served_and_offline_scores(
    sf: StorefrontClient, products: list[Product], truth: Mapping[str, frozenset[str]]
) -> dict[str, tuple[float, float]]:
    by_id = {p.id: p for p in products}
    served: dict[str, list[float]] = defaultdict(list)
    expected: dict[str, list[float]] = defaultdict(list)
    for user, relevant in sorted(truth.items()):
        answer = await sf.query({"userId": user, "page": "HOME"}, SELECTION)
        assert answer["degraded"] == [], answer["degraded"]
        for got in answer["slots"]:
            slot = next(s for s in home_slots(sf) if s.name == got["name"])
            shown = [item["product"]["id"] for item in got["items"]]
            assert all(item["reasons"] for item in got["items"])  # a reason on every item
            wanted = await offline(sf, slot, user, by_id)
            assert shown == wanted, (user, slot.name)
            if len(wanted) >= slot.limit:
                assert len(shown) == slot.limit  # caps and exclusions never shrank it
            served[slot.name].append(ranking_metrics(shown, relevant)["ndcg@10"])
            expected[slot.name].append(ranking_metrics(wanted, relevant)["ndcg@10"])
    return {
        name: (sum(served[name]) / len(served[name]), sum(expected[name]) / len(expected[name]))
        for name in served
    }


def home_slots(sf: StorefrontClient) -> list[Slot]:
    """The HOME slots as the storefront serves them (configured, then tuned)."""
    from shopfront.storefront.request import StorefrontRequest

    return sf.composer.resolve_slots(StorefrontRequest(page=PageType.HOME, user_id="anyone"))


async def test_each_served_slot_scores_what_the_model_scores_offline(
    store: Store, settings: Settings, storefront_client: StorefrontClientFactory
) -> None:
    products, truth = await seed_shop(store, settings)
    data = await load_training_data(store, window_days=settings.training_window_days)
    await train(store, settings, builtin_recommenders(settings, store), data=data)
    sf = await storefront_client(builtins=True)
    scores = await served_and_offline_scores(sf, products, truth)
    assert set(scores) == {"recommended_for_you", "trending", "recently_viewed"}
    for name, (served, expected) in scores.items():
        assert served == pytest.approx(expected, abs=1e-12), name


async def test_tuned_version_is_what_the_storefront_serves(
    store: Store, settings: Settings, storefront_client: StorefrontClientFactory
) -> None:
    products, truth = await seed_shop(store, settings)
    data = await load_training_data(store, window_days=settings.training_window_days)
    sf_slots = [
        Slot("recommended_for_you", "Recommended for you", ("recommended_for_you", "trending"))
    ]
    tuning = await tune_shop(store, settings, data, sf_slots, max_users=SHOPPERS)
    assert tuning.repeatability.repeatable == ("*",)  # the shop re-buys: learned, not set
    chosen = tuning.choice("recommended_for_you")
    assert chosen is not None and "buy_again" in chosen.strategies
    assert chosen.ndcg >= max(chosen.configured_ndcg, chosen.best_single_ndcg)
    await train(store, settings, builtin_recommenders(settings, store), data=data, tuning=tuning)
    sf = await storefront_client(builtins=True)
    served = {s.name: s for s in home_slots(sf)}
    assert served["recommended_for_you"].strategies == chosen.strategies
    assert served["trending"].params["repeatable_categories"] == ["*"]
    scores = await served_and_offline_scores(sf, products, truth)
    for name, (got, expected) in scores.items():
        assert got == pytest.approx(expected, abs=1e-12), name
    # The tuned HOME slot beats showing the shop's best sellers to everyone.
    assert scores["recommended_for_you"][0] > scores["trending"][0]
