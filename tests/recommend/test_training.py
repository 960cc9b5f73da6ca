"""Training and the model lifecycle through the embedded database: versions in GridFS, load,
hot reload while queries run, rollback, the training lock, and the CLI."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from shopfront.catalog.products import upsert_products
from shopfront.cli import main
from shopfront.platform.config import Settings
from shopfront.platform.metrics import Metrics
from shopfront.platform.store import Store
from shopfront.plugins.recommenders import also_viewed, trending
from shopfront.recommend import models
from shopfront.recommend.fitting import builtin_recommenders, load_training_data
from shopfront.recommend.models import ModelRegistry, decode, encode
from shopfront.recommend.training import TrainingLock, scheduled_training, train, train_under_lock

from tests.plugins.recommenders.kit import NOW, event, product, request, setup, slot
from tests.waiting import eventually

CATALOG = [
    product("run1", "Trail Runner X", category=("Shoes", "Running")),
    product("run2", "Road Runner", category=("Shoes", "Running")),
    product("sock1", "Running Socks", category=("Apparel", "Socks")),
    product("cap1", "Sun Cap", category=("Apparel", "Hats")),
    product("bottle", "Water Bottle", category=("Gear",)),
]


def shop_events(favourite: str) -> list[dict[str, Any]]:
    """Shoppers who view run1 then ``favourite``; everyone buys ``favourite`` a lot."""
    events = []
    for i in range(6):
        events += [
            event("view", f"u{i}", "run1", days_ago=2, session=f"s{i}"),
            event("view", f"u{i}", favourite, days_ago=1.9, session=f"s{i}"),
            event("purchase", f"u{i}", favourite, days_ago=1.8, order=f"o{i}"),
            event("purchase", f"u{i}", "run1", days_ago=1.8, order=f"o{i}"),
        ]
    return events


async def seed(store: Store, events: list[dict[str, Any]]) -> None:
    await upsert_products(store, [p.to_doc() for p in CATALOG])
    await store.collection("events").delete_many({})
    await store.collection("events").insert_many([dict(e) for e in events])


async def answer(strategy: Any) -> list[str]:
    found = await strategy.recommend(request(CATALOG, product_id="run1"), slot("x"))
    return [c.product_id for c in found]


def test_encode_refuses_python_objects_and_round_trips_arrays() -> None:
    arrays = {"ids": np.array(["a", "b"]), "scores": np.arange(3, dtype=np.float32)}
    back = decode(encode(arrays))
    assert back.keys() == arrays.keys()
    assert back["ids"].tolist() == ["a", "b"]
    with pytest.raises(models.ModelError, match="Python objects"):
        encode({"bad": np.array([{"x": 1}], dtype=object)})


async def test_load_training_data_reads_the_window_as_columns(store: Store) -> None:
    old = event("view", "u9", "cap1", days_ago=400)
    await seed(store, [*shop_events("sock1"), old, event("impression", "u1", "cap1")])
    data = await load_training_data(store, window_days=30, now=NOW)
    assert [p.id for p in data.products] == sorted(p.id for p in CATALOG)
    assert len(data.interactions) == 24  # the old event and the impression are left out
    assert data.interactions.item_ids[: len(CATALOG)] == tuple(p.id for p in data.products)
    first = data.events[0]
    assert first["type"] == "view" and first["user_id"] == "u0"


async def test_train_saves_a_version_that_other_instances_load(
    store: Store, settings: Settings
) -> None:
    await seed(store, shop_events("sock1"))
    trainer = builtin_recommenders(settings, store)
    result = await train(store, settings, trainer, now=NOW)
    version = result.version
    assert version.status == models.ACTIVE
    assert {a.strategy for a in version.artifacts} == {
        "trending",
        "buy_again",
        "similar_items",
        "also_viewed",
        "bought_together",
        "recommended_for_you",
        "session",
        "search",
        "because_you_searched",
        "new_for_you",
    }
    assert version.sizes["events"] == 24 and version.sizes["products"] == len(CATALOG)

    # Another instance: fresh strategy objects, loaded from GridFS.
    metrics = Metrics()
    registry = ModelRegistry(store, settings, metrics)
    fresh = {
        name: module.create(setup(name))
        for name, module in [("also_viewed", also_viewed), ("trending", trending)]
    }
    for name, strategy in fresh.items():
        assert registry.attach(name, strategy)
    assert not registry.attach("recently_viewed", object())
    await registry.start()
    try:
        assert registry.loaded is not None and registry.loaded.version == version.version
        assert metrics.model_versions() == {name: version.version for name in fresh}
        for name, strategy in fresh.items():
            assert await answer(strategy) == await answer(trainer[name]), name
        assert (await answer(fresh["also_viewed"]))[0] == "sock1"
    finally:
        await registry.stop()


async def test_hot_reload_while_queries_run_and_rollback(store: Store, settings: Settings) -> None:
    await seed(store, shop_events("sock1"))
    first = await train(
        store, settings, {"also_viewed": also_viewed.create(setup("also_viewed"))}, now=NOW
    )
    await seed(store, shop_events("cap1"))
    second = await train(
        store,
        settings,
        {"also_viewed": also_viewed.create(setup("also_viewed"))},
        activate_version=False,
        now=NOW,
    )
    await models.activate(store, first.version.version)

    serving = also_viewed.create(setup("also_viewed"))
    fast = Settings.from_env({}, **{**settings.__dict__, "model_poll_interval_s": 0.1})
    registry = ModelRegistry(store, fast)
    registry.attach("also_viewed", serving)
    await registry.start()
    try:
        assert (await answer(serving))[0] == "sock1"
        answers: list[str] = []
        stop = asyncio.Event()

        async def shopper() -> None:
            while not stop.is_set():
                answers.append((await answer(serving))[0])
                await asyncio.sleep(0)

        queries = [asyncio.create_task(shopper()) for _ in range(4)]
        await eventually(lambda: len(answers) >= 8, "shoppers are being answered")
        await models.activate(store, second.version.version)  # the poller picks it up
        await eventually(
            lambda: (
                registry.loaded is not None and registry.loaded.version == second.version.version
            ),
            "the poller loaded the new version",
        )
        swapped = len(answers)
        await eventually(lambda: len(answers) >= swapped + 8, "shoppers answered after the swap")
        stop.set()
        await asyncio.gather(*queries)
        assert registry.loaded.version == second.version.version
        assert set(answers) == {"sock1", "cap1"}  # every answer came from one whole model
        assert answers[-1] == "cap1"
        # Roll back.
        await models.activate(store, first.version.version)
        await registry.refresh()  # (or the poller got there first)
        assert registry.loaded.version == first.version.version
        assert (await answer(serving))[0] == "sock1"
    finally:
        await registry.stop()


async def test_versions_are_listed_newest_first_and_pruned(
    store: Store, settings: Settings
) -> None:
    await seed(store, shop_events("sock1"))
    keep_two = Settings.from_env({}, **{**settings.__dict__, "model_keep_versions": 2})
    made = []
    for k in range(4):
        result = await train(
            store,
            keep_two,
            {"trending": trending.create(setup("trending"))},
            now=NOW + timedelta(minutes=k),
            activate_version=k == 0,
        )
        made.append(result.version.version)
    listed = [v.version for v in await models.list_versions(store)]
    assert listed == [made[3], made[2], made[0]]  # the active first version is never pruned
    files = await store.collection("models.files").count_documents({})
    assert files == 3
    with pytest.raises(models.ModelError, match="no model version"):
        await models.activate(store, "nope")


async def test_a_strategy_that_fails_to_fit_is_left_out(store: Store, settings: Settings) -> None:
    await seed(store, shop_events("sock1"))

    class Broken:
        async def recommend(self, ctx: Any, slot: Any) -> list[Any]:
            return []

        async def fit(self, data: Any) -> None:
            raise RuntimeError("boom")

    result = await train(
        store,
        settings,
        {"broken": Broken(), "trending": trending.create(setup("trending"))},
        now=NOW,
    )
    assert [a.strategy for a in result.version.artifacts] == ["trending"]


async def test_training_lock_has_one_holder_until_released_or_expired(store: Store) -> None:
    a = TrainingLock(store, "training", lease_s=60, owner="a")
    b = TrainingLock(store, "training", lease_s=60, owner="b")
    assert await a.acquire(NOW)
    assert not await b.acquire(NOW)
    assert await a.acquire(NOW + timedelta(seconds=30))  # renewal
    assert not await b.acquire(NOW + timedelta(seconds=80))  # renewed until +90
    assert await b.acquire(NOW + timedelta(seconds=91))  # expired: b takes over
    assert not await a.acquire(NOW + timedelta(seconds=92))
    await b.release()
    assert await a.acquire(NOW + timedelta(seconds=93))


async def test_only_one_of_many_concurrent_trainers_gets_the_lock(store: Store) -> None:
    locks = [TrainingLock(store, "training", lease_s=60, owner=f"i{k}") for k in range(20)]
    won = await asyncio.gather(*(lock.acquire(NOW) for lock in locks))
    assert sum(won) == 1


async def test_trainers_on_many_instances_train_one_at_a_time(
    store: Store, settings: Settings
) -> None:
    await seed(store, shop_events("sock1"))
    locks = [TrainingLock(store, "training", lease_s=60, owner=f"i{k}") for k in range(3)]
    held = TrainingLock(store, "training", lease_s=60, owner="crashed")
    assert await held.acquire()  # a trainer that died holding the lease

    async def work() -> Any:
        return await train(store, settings, {"trending": trending.create(setup("trending"))})

    blocked = await asyncio.gather(*(train_under_lock(lock, 60, work) for lock in locks))
    assert blocked == [None, None, None]
    # Its lease runs out (no renewals): exactly one of the others trains, then releases.
    await store.collection(TrainingLock.COLLECTION).update_one(
        {"_id": "training"}, {"$set": {"expires_at": NOW - timedelta(days=1)}}
    )
    results = await asyncio.gather(*(train_under_lock(lock, 60, work) for lock in locks))
    assert sum(r is not None for r in results) == 1
    assert await store.collection(TrainingLock.COLLECTION).count_documents({}) == 0


def test_cli_train_schedule_needs_an_interval(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPFRONT_MONGODB_URI", settings.mongodb_uri)
    monkeypatch.setenv("SHOPFRONT_TRAINING_INTERVAL_MINUTES", "0")
    result = CliRunner().invoke(main, ["train", "--schedule"])
    assert result.exit_code == 2
    assert "SHOPFRONT_TRAINING_INTERVAL_MINUTES" in result.output


def test_cli_train_and_evaluate(
    store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.get_event_loop_policy()  # the store fixture's loop is not used by the CLI
    monkeypatch.setenv("SHOPFRONT_MONGODB_URI", settings.mongodb_uri)
    monkeypatch.setenv("SHOPFRONT_MONGODB_DATABASE", settings.mongodb_database)
    events = [
        event(kind, f"u{u}", pid, days_ago=10 - 0.1 * k - 0.01 * u, order=f"o{u}-{k}")
        for u in range(12)
        for k, (kind, pid) in enumerate(
            [
                ("view", "run1"),
                ("view", "sock1"),
                ("purchase", "sock1"),
                ("view", "bottle"),
                ("view", "cap1"),
            ]
        )
    ]
    asyncio.run(_seed_in_new_loop(settings, events))
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--evaluate"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "model version" in result.output and "recommended_for_you" in result.output
    assert "Strategy" in result.output and "Fit (s)" in result.output  # a table with headers
    evaluated = runner.invoke(main, ["evaluate", "--format", "json"], catch_exceptions=False)
    assert evaluated.exit_code == 0, evaluated.output
    assert '"ndcg@10"' in evaluated.output and '"blend"' in evaluated.output
    as_json = runner.invoke(main, ["evaluate", "--json"], catch_exceptions=False)
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)[0]["name"]
    table = runner.invoke(main, ["evaluate"], catch_exceptions=False)
    assert table.exit_code == 0 and "ndcg@10" in table.stdout and "None" not in table.stdout


async def _seed_in_new_loop(settings: Settings, events: list[dict[str, Any]]) -> None:
    from shopfront.platform.store import open_store

    store = await open_store(settings, settings.mongodb_uri)
    try:
        await seed(store, events)
    finally:
        await store.close()


async def test_the_in_service_scheduler_retrains_and_serves_the_new_version(
    store: Store, settings: Settings
) -> None:
    await seed(store, shop_events("sock1"))
    fast = Settings.from_env(
        {},
        **{**settings.__dict__, "training_interval_minutes": 0.005, "training_window_days": 3650},
    )
    registry = ModelRegistry(store, fast)
    serving = also_viewed.create(setup("also_viewed"))
    registry.attach("also_viewed", serving)
    await registry.start()  # nothing to load yet: untrained strategies serve nothing
    # as the app's lifespan does when SHOPFRONT_TRAINING_INTERVAL_MINUTES is set
    registry.keep(asyncio.create_task(scheduled_training(registry)))
    try:
        assert await answer(serving) == []
        await eventually(lambda: registry.loaded is not None, "the scheduler trained a model")
        assert registry.loaded is not None and registry.loaded.status == models.ACTIVE
        assert (await answer(serving))[0] == "sock1"

        async def unlocked() -> bool:  # released just after the new version is served
            return await store.collection("locks").count_documents({}) == 0

        await eventually(unlocked, "the training lock was released")
        assert await store.collection("locks").count_documents({}) == 0
    finally:
        await registry.stop()


async def test_training_an_empty_shop_saves_a_version_that_serves_nothing(
    store: Store, settings: Settings
) -> None:
    result = await train(store, settings, builtin_recommenders(settings, store), now=NOW)
    assert result.version.sizes == {
        "products": 0,
        "events": 0,
        "shoppers": 0,
        "products_with_events": 0,
    }
    assert len(result.version.artifacts) == 10
