"""Training: fit every recommender on the shop's catalog and events, save a model version.

``shopfront train`` and the in-service scheduler both run `train`: load the catalog and the
events of the training window (``SHOPFRONT_TRAINING_WINDOW_DAYS``) as numpy columns, call each
trainable strategy's ``fit``, save the fitted states as a new version
(`shopfront.recommend.models`) and,
by default, activate it so every instance picks it up.

The scheduler (``SHOPFRONT_TRAINING_INTERVAL_MINUTES`` > 0) takes a lease lock in the
``locks`` collection before training — an atomic ``find_one_and_update`` that only succeeds
when the lock is free or expired — and renews it while training, so one instance trains at a
time and a crashed trainer's lock expires after ``SHOPFRONT_TRAINING_LOCK_LEASE_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shopfront.platform.config import Settings
from shopfront.platform.store import DuplicateKeyError, ReturnDocument, Store
from shopfront.recommend.contract import Slot, TrainingData
from shopfront.recommend.fitting import (
    Progress,
    builtin_recommenders,
    data_sizes,
    fit_all,
    load_training_data,
    peak_memory_mb,
)
from shopfront.recommend.models import ModelVersion, PersistentModel, activate, prune, save_version
from shopfront.recommend.tuning import Tuning, learn_repeatability, tune

if TYPE_CHECKING:
    from shopfront.recommend.models import ModelRegistry

log = logging.getLogger("shopfront.training")


@dataclass(frozen=True)
class TrainResult:
    version: ModelVersion
    fit_seconds: Mapping[str, float]
    total_seconds: float
    peak_memory_mb: float = 0.0  # the process's peak resident memory so far
    tuning: Tuning | None = None


async def train(
    store: Store,
    settings: Settings,
    recommenders: Mapping[str, object],
    *,
    data: TrainingData | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    activate_version: bool = True,
    metrics: Mapping[str, Mapping[str, float]] | None = None,
    tuning: Tuning | None = None,
) -> TrainResult:
    """Fit ``recommenders`` and save (and by default activate) a new model version, with the
    ``tuning`` chosen for it (`tune_shop`); without one, the version still carries the
    repeatability learned from ``data``."""
    started = time.perf_counter()
    if data is None:
        data = await load_training_data(
            store, window_days=settings.training_window_days, now=now, progress=progress
        )
    fit_seconds = await fit_all(recommenders, data)
    if tuning is None:  # repeatability is learned at every training, tuned or not
        tuning = Tuning(learn_repeatability(data.interactions, data.products))
    artifacts = {}
    for name in fit_seconds:
        recommender = recommenders[name]
        if isinstance(recommender, PersistentModel):
            arrays = recommender.dump_model()
            if arrays is not None:
                artifacts[name] = arrays
    report = progress or (lambda stage, done: None)
    report("save", 0.0)
    version = await save_version(
        store,
        artifacts=artifacts,
        fit_seconds=fit_seconds,
        window_start=data.window_start,
        window_end=data.window_end,
        sizes=data_sizes(data),
        metrics=metrics,
        tuning=tuning.to_doc() if tuning is not None else None,
        now=now,
    )
    if activate_version:
        version = await activate(store, version.version)
    await prune(store, settings.model_keep_versions)
    report("save", 1.0)
    return TrainResult(
        version, fit_seconds, time.perf_counter() - started, peak_memory_mb(), tuning
    )


async def tune_shop(
    store: Store,
    settings: Settings,
    data: TrainingData,
    slots: Sequence[Slot],
    *,
    max_users: int = 500,
) -> Tuning:
    """Choose how to serve ``slots`` from ``data`` (`service.tuning.tune`), fitting fresh
    built-in recommenders on a time-based holdout (the serving ones are not touched)."""
    from shopfront.recommend.evaluation import configured_policy

    return await tune(
        data,
        builtin_recommenders(settings, store),
        slots,
        policy=configured_policy(settings),
        max_users=max_users,
    )


# -- the in-service scheduler --------------------------------------------------------------


class TrainingLock:
    """A lease lock document: held by one owner until released or expired."""

    COLLECTION = "locks"

    def __init__(self, store: Store, name: str, lease_s: float, owner: str | None = None) -> None:
        self.store = store
        self.name = name
        self.lease = timedelta(seconds=lease_s)
        self.owner = owner or f"{socket.gethostname()}:{secrets.token_hex(4)}"

    async def acquire(self, now: datetime | None = None) -> bool:
        """Take (or renew) the lock; False when another owner holds an unexpired lease."""
        when = now or datetime.now(UTC)
        try:
            await self.store.collection(self.COLLECTION).find_one_and_update(
                {"_id": self.name, "$or": [{"expires_at": {"$lte": when}}, {"owner": self.owner}]},
                {"$set": {"owner": self.owner, "expires_at": when + self.lease}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # the document exists and its filter did not match
            return False
        return True

    async def release(self) -> None:
        await self.store.collection(self.COLLECTION).delete_one(
            {"_id": self.name, "owner": self.owner}
        )


async def train_under_lock(
    lock: TrainingLock, lease_s: float, work: Callable[[], Awaitable[TrainResult]]
) -> TrainResult | None:
    """Run one training ``work`` if this process gets the lease lock (renewed while it runs,
    released after); None when another trainer holds it. A trainer that crashes stops
    renewing, so its lease expires and the next one takes over."""
    if not await lock.acquire():
        return None
    renewer = asyncio.create_task(_keep_renewing(lock, lease_s))
    try:
        return await work()
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        await lock.release()


async def scheduled_training(registry: ModelRegistry) -> None:
    """Every ``training_interval_minutes``: if this instance gets the lock, retrain the
    registry's attached strategies, save and activate the version, and serve it."""
    settings = registry.settings
    lock = TrainingLock(registry.store, "training", settings.training_lock_lease_s)
    while True:
        await asyncio.sleep(settings.training_interval_minutes * 60)
        try:

            async def run() -> TrainResult:
                recommenders = {n: s[0] for n, s in registry.attached.items() if s}
                data = await load_training_data(
                    registry.store, window_days=settings.training_window_days
                )
                tuning = (
                    await tune_shop(registry.store, settings, data, registry.slots)
                    if settings.training_tune and registry.slots
                    else None
                )
                return await train(registry.store, settings, recommenders, data=data, tuning=tuning)

            result = await train_under_lock(lock, settings.training_lock_lease_s, run)
            if result is not None:
                await registry.refresh(force=True)  # every attached copy serves it
                log.info("scheduled training saved version %s", result.version.version)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduled training failed; the current model keeps serving")


async def _keep_renewing(lock: TrainingLock, lease_s: float) -> None:
    while True:
        await asyncio.sleep(lease_s / 3)
        if not await lock.acquire():
            log.warning("lost the training lock %s", lock.name)
            return
