"""Learned repeatability, slot tuning saved with the model version, and training's deadline."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from shopfront.cli import main
from shopfront.platform.config import Settings
from shopfront.platform.store import Store
from shopfront.recommend.contract import Slot
from shopfront.recommend.fitting import (
    TrainingDeadlineExceeded,
    builtin_recommenders,
    load_training_data,
)
from shopfront.recommend.interactions import Interactions
from shopfront.recommend.models import ModelRegistry
from shopfront.recommend.training import train
from shopfront.recommend.tuning import (
    Repeatability,
    SlotChoice,
    Tuning,
    learn_repeatability,
)

from bench.synthetic import repeat_shop
from tests.plugins.recommenders.kit import NOW, event, product

SHOP = [
    product("milk", category=("Grocery", "Dairy")),
    product("bread", category=("Grocery", "Bakery")),
    product("boots", category=("Shoes", "Hiking")),
    product("coat", category=("Apparel", "Coats")),
]


def purchases(plan: list[tuple[str, str, float]]) -> Interactions:
    events = [event("purchase", u, p, days_ago=d, order=f"{u}-{d}") for u, p, d in plan]
    events.sort(key=lambda e: e["timestamp"])
    return Interactions.from_events(events, [p.id for p in SHOP])


def test_repeatability_is_learned_per_category_and_for_the_whole_shop() -> None:
    # 30 shoppers re-buy milk weekly; each buys boots and a coat once.
    plan = [(f"u{u}", "milk", 7.0 * k + 0.1 * u) for u in range(30) for k in range(3)]
    plan += [(f"u{u}", p, 40.0 + u) for u in range(30) for p in ("boots", "coat")]
    learned = learn_repeatability(purchases(plan), SHOP, threshold=0.5)
    assert learned.purchases == 150
    assert learned.repeat_share == pytest.approx(60 / 150)
    assert learned.categories["Grocery > Dairy"] == pytest.approx(60 / 90)
    assert learned.categories["Shoes"] == 0.0
    assert learned.repeatable == ("Grocery",)  # the parent covers "Grocery > Dairy"
    everything = learn_repeatability(purchases(plan), SHOP, threshold=0.3, shop_threshold=0.3)
    assert everything.repeatable == ("*",)
    # Lines of one checkout bought twice the same hour are not a re-buy.
    same_day = [(f"u{u}", "coat", 3.0 + k * 0.001) for u in range(30) for k in range(2)]
    assert learn_repeatability(purchases(same_day), SHOP).repeat_share == 0.0
    assert learn_repeatability(purchases([]), SHOP) == Repeatability()


def test_tuning_applies_to_slots_and_round_trips_as_a_document() -> None:
    choice = SlotChoice(
        "for_you",
        ("buy_again", "recommended_for_you"),
        {"buy_again": 3.0, "recommended_for_you": 0.3},
        ndcg=0.5,
        configured_ndcg=0.2,
        best_single="buy_again",
        best_single_ndcg=0.45,
        why="NDCG@10 0.5 on the holdout",
    )
    tuning = Tuning(
        Repeatability(100, 0.6, {"Grocery > Dairy": 0.7}, ("*",)),
        (choice,),
        {"test_fraction": 0.2, "shoppers": 40, "truth": "next basket"},
    )
    back = Tuning.from_doc(json.loads(json.dumps(tuning.to_doc())))
    assert back == tuning
    configured = Slot("for_you", "For you", ("recommended_for_you", "trending"))
    served = back.apply(configured)
    assert served.strategies == ("buy_again", "recommended_for_you")
    assert served.weights == {"buy_again": 3.0, "recommended_for_you": 0.3}
    assert served.params["repeatable_categories"] == ["*"]
    other = back.apply(Slot("trending", "Trending", ("trending",)))
    assert other.strategies == ("trending",) and other.params["repeatable_categories"] == ["*"]
    assert Tuning().apply(configured) == configured
    report = "\n".join(back.report())
    assert "60% of 100 purchases re-buy" in report and "NDCG@10 0.5 on the holdout" in report


async def test_a_tuned_version_carries_its_tuning_to_every_instance(
    store: Store, settings: Settings
) -> None:
    from shopfront.catalog.products import upsert_products

    products, docs = repeat_shop(16, 60, days=60, seed=2)
    await upsert_products(store, [p.to_doc() for p in products])
    shift = NOW - max(d["timestamp"] for d in docs)
    await store.collection("events").insert_many(
        [{**d, "timestamp": d["timestamp"] + shift} for d in docs]
    )
    data = await load_training_data(store, window_days=90, now=NOW)
    from shopfront.recommend.training import tune_shop

    slot = Slot("home", "For you", ("recommended_for_you", "trending"))
    tuning = await tune_shop(store, settings, data, [slot], max_users=16)
    assert tuning.repeatability.repeatable == ("*",)
    chosen = tuning.choice("home")
    assert chosen is not None and chosen.ndcg > chosen.configured_ndcg
    assert chosen.ndcg >= chosen.best_single_ndcg
    assert chosen.why.startswith(f"NDCG@10 {chosen.ndcg:.4f} on the holdout")
    result = await train(
        store, settings, builtin_recommenders(settings, store), data=data, tuning=tuning
    )
    assert result.peak_memory_mb > 0
    registry = ModelRegistry(store, settings)
    assert registry.tuning == Tuning()  # nothing loaded yet: served as configured
    await registry.start()
    try:
        assert registry.tuning == tuning
        assert registry.tuning.apply(slot).strategies == chosen.strategies
    finally:
        await registry.stop()


async def test_training_reads_in_batches_within_its_own_deadline(
    store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shopfront.recommend.fitting as fitting

    monkeypatch.setattr(fitting, "BATCH", 7)  # many small batches over a small shop
    await store.collection("events").insert_many(
        [
            dict(event("view", f"u{i % 5}", p.id, days_ago=1 + i / 100))
            for i, p in enumerate(SHOP * 10)
        ]
    )
    from shopfront.catalog.products import upsert_products

    await upsert_products(store, [p.to_doc() for p in SHOP])
    stages: dict[str, list[float]] = {}
    data = await load_training_data(
        store, window_days=30, now=NOW, progress=lambda s, f: stages.setdefault(s, []).append(f)
    )
    assert len(data.interactions) == 40 and len(data.products) == 4
    assert stages["events"][-1] == 1.0 and len(stages["events"]) >= 6
    late = fitting.Deadline(1.0)
    late.ends -= 2.0  # a job already past its deadline stops at the next read, saying why
    monkeypatch.setattr(fitting, "Deadline", lambda seconds: late)
    with pytest.raises(TrainingDeadlineExceeded, match="SHOPFRONT_TRAINING_DEADLINE_S"):
        await load_training_data(store, window_days=30, now=NOW)


def test_cli_evaluate_tune_says_what_it_chose_and_serves_it(
    store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.get_event_loop_policy()  # the store fixture's loop is not used by the CLI
    monkeypatch.setenv("SHOPFRONT_MONGODB_URI", settings.mongodb_uri)
    monkeypatch.setenv("SHOPFRONT_MONGODB_DATABASE", settings.mongodb_database)
    products, docs = repeat_shop(12, 50, days=60, seed=4)
    shift = datetime.now(UTC) - timedelta(hours=1) - max(d["timestamp"] for d in docs)
    asyncio.run(_seed_shop(settings, products, docs, shift))
    runner = CliRunner()
    result = runner.invoke(main, ["evaluate", "--tune"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "tuning saved with this version" in result.output
    assert "bought products may be shown again everywhere" in result.output
    assert "slot recommended_for_you: " in result.output and "on the holdout" in result.output
    assert "peak memory" in result.output
    report = runner.invoke(main, ["evaluate", "--report", "--json"], catch_exceptions=False)
    assert report.exit_code == 0, report.output
    body = json.loads(report.output[report.output.index("{") :])
    assert body["truth"] == "next basket"
    rows = {row["name"]: row["ndcg@10"] for row in body["rows"]}
    assert {"buy_again", "recommended_for_you", "blend (HOME, tuned)"} <= set(rows)
    signals = {s["signal"]: s for s in body["signals"]}
    assert set(signals) == {
        "viewed_same_department",
        "for_you_shared_with_trending",
        "top_first_share",
    }
    assert all(isinstance(s["ok"], bool) and s["target"] for s in signals.values())


async def _seed_shop(
    settings: Settings, products: list[Any], docs: list[dict[str, Any]], shift: timedelta
) -> None:
    from shopfront.catalog.products import upsert_products
    from shopfront.platform.store import open_store

    store = await open_store(settings, settings.mongodb_uri)
    try:
        await upsert_products(store, [p.to_doc() for p in products])
        shifted = [{**d, "timestamp": d["timestamp"] + shift} for d in docs]
        await store.collection("events").insert_many(shifted)
    finally:
        await store.close()
