"""Batch jobs the command line and a dedicated trainer run: train (with offline metrics and
slot tuning when asked) and save a model version that every instance then serves."""

from __future__ import annotations

from typing import Any

from shopfront.cli_support import stage_progress
from shopfront.extend.config import load_config_file
from shopfront.platform.config import Settings
from shopfront.platform.store import Store
from shopfront.recommend.contract import Slot
from shopfront.recommend.evaluation import evaluate_shop
from shopfront.recommend.training import (
    TrainResult,
    builtin_recommenders,
    load_training_data,
    train,
    tune_shop,
)
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
