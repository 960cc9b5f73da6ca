"""Batch jobs the command line and a dedicated trainer run: train (with offline metrics and
slot tuning when asked) and save a model version that every instance then serves."""

from __future__ import annotations

import json
from typing import Any

from shopfront.cli_support import cell, new_table, print_table, stage_progress
from shopfront.extend.config import load_config_file
from shopfront.platform.config import Settings
from shopfront.platform.store import Store
from shopfront.recommend.contract import Slot
from shopfront.recommend.evaluation import evaluate_shop
from shopfront.recommend.fitting import builtin_recommenders, load_training_data
from shopfront.recommend.training import TrainResult, train, tune_shop
from shopfront.storefront.slots import configured_slots as slots_of
from shopfront.storefront.slots import slots_from_config


async def train_and_save(
    store: Store, settings: Settings, *, activate: bool, with_metrics: bool, tune: bool
) -> TrainResult:
    """Load the data once; optionally measure and tune; fit, save and activate a version."""
    with stage_progress() as report:
        metrics = None
        if with_metrics:
            rows = await evaluate_shop(store, settings, progress=report)
            metrics = {str(r["name"]): numbers(r) for r in rows}
        data = await load_training_data(
            store, window_days=settings.training_window_days, progress=report
        )
        tuning = (
            await tune_shop(store, settings, data, configured_slots(settings)) if tune else None
        )
        return await train(
            store,
            settings,
            builtin_recommenders(settings, store),
            data=data,
            progress=report,
            activate_version=activate,
            metrics=metrics,
            tuning=tuning,
        )


def configured_slots(settings: Settings) -> list[Slot]:
    """Every page's slots as configured (``[slots]`` of the config file, else the defaults)."""
    config = load_config_file(settings.config_file)
    return slots_of(slots_from_config(config.slots, config.source))


def numbers(row: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in row.items() if isinstance(v, int | float) and k != "name"}


async def quality_report(
    store: Store, settings: Settings, test_fraction: float, users: int, as_json: bool
) -> list[str]:
    """``shopfront evaluate --report``: prints the tables, returns the lines still to echo."""
    from shopfront.recommend.quality_report import shop_report, signal_rows

    with stage_progress() as progress:
        result = await shop_report(
            store,
            settings,
            configured_slots(settings),
            test_fraction=test_fraction,
            max_users=users,
            progress=progress,
        )
    signals = signal_rows(result.signals)
    if as_json:
        payload = {"truth": result.truth, "rows": result.rows, "signals": signals}
        return [json.dumps({**payload, "tuning": result.tuning.to_doc()}, indent=2)]
    columns = ["name", "ndcg@10", "hr@10", "recall@20", "map@10", "coverage", "users"]
    table = new_table(
        *columns,
        title=f"Offline evaluation (truth: {result.truth}, last {test_fraction:.0%} of time)",
        right=columns[1:],
    )
    for row in result.rows:
        table.add_row(*(cell(row.get(c)) for c in columns))
    print_table(table)
    checks = new_table("signal", "value", "target", "ok", "detail", title="HOME page signals")
    for s in signals:
        ok = "yes" if s["ok"] else "NO"
        checks.add_row(s["signal"], cell(s["value"]), s["target"], ok, s["detail"])
    print_table(checks)
    return result.tuning.report()
