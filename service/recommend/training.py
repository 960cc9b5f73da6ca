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
import resource
import secrets
import socket
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shopfront.catalog.products import Product
from shopfront.platform.config import ConfigError, Settings
from shopfront.platform.store import DuplicateKeyError, ReturnDocument, Store
from shopfront.platform.store import deadline as deadline_of
from shopfront.platform.strategy_setup import StrategySetup
from shopfront.platform.vocabulary import EVENT_TYPES
from shopfront.recommend.contract import Recommender, Slot, Trainable, TrainingData
from shopfront.recommend.interactions import InteractionsBuilder
from shopfront.recommend.models import ModelVersion, PersistentModel, activate, prune, save_version
from shopfront.recommend.tuning import Tuning, tune

if TYPE_CHECKING:
    from shopfront.recommend.models import ModelRegistry

log = logging.getLogger("shopfront.training")

Progress = Callable[[str, float], None]
# Impressions and searches carry no product preference the built-ins learn from, and can
# outnumber every other event ten to one: they are not loaded for training.
TRAINING_EVENT_TYPES: tuple[str, ...] = tuple(
    t for t in EVENT_TYPES if t not in ("impression", "search")
)
EVENT_FIELDS = (
    "type", "user_id", "session_id", "timestamp", "product_id", "quantity", "order_id", "rating"
)  # fmt: skip
BATCH = 10_000


@dataclass(frozen=True)
class TrainResult:
    version: ModelVersion
    fit_seconds: Mapping[str, float]
    total_seconds: float
    peak_memory_mb: float = 0.0  # the process's peak resident memory so far
    tuning: Tuning | None = None


def peak_memory_mb() -> float:
    """This process's peak resident set size, in MB (Linux reports KB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak / 1e3


# -- data ----------------------------------------------------------------------------------


class TrainingDeadlineExceeded(TimeoutError):
    """A training job ran past ``SHOPFRONT_TRAINING_DEADLINE_S``."""


class Deadline:
    """The job's own deadline: each read gets what is left of it (as ``pymongo.timeout``),
    instead of the per-request ``SHOPFRONT_MONGO_OPERATION_TIMEOUT_MS``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds

    def left(self, step: str) -> float:
        remaining = self.ends - time.monotonic()
        if remaining <= 0:
            raise TrainingDeadlineExceeded(
                f"training passed its deadline of {self.seconds:.0f}s while reading {step}; "
                "raise SHOPFRONT_TRAINING_DEADLINE_S or shorten SHOPFRONT_TRAINING_WINDOW_DAYS"
            )
        return remaining


async def _batches(
    collection: Any,
    query: Mapping[str, Any],
    projection: Mapping[str, Any],
    key: str,
    deadline: Deadline,
    step: str,
) -> AsyncIterator[list[dict[str, Any]]]:
    """``query``'s documents in batches of `BATCH`, by ascending ``key`` (unique, and kept by
    ``projection``): each batch
    is its own short query from the last key seen, so no cursor outlives a read timeout."""
    last: Any = None
    while True:
        page = dict(query)
        if last is not None:
            page[key] = {"$gt": last}
        with deadline_of(deadline.left(step)):
            batch = await collection.find(page, projection).sort(key, 1).limit(BATCH).to_list(None)
        if not batch:
            return
        last = batch[-1][key]
        yield batch
        if len(batch) < BATCH:
            return


async def load_training_data(
    store: Store,
    *,
    window_days: int,
    now: datetime | None = None,
    progress: Progress | None = None,
    deadline_s: float | None = None,
) -> TrainingData:
    """The whole catalog and the window's events, read in batches into columns, within the
    job's deadline (``deadline_s``, default ``SHOPFRONT_TRAINING_DEADLINE_S``)."""
    end = now or datetime.now(UTC)
    start = end - timedelta(days=window_days)
    report = progress or (lambda stage, done: None)
    deadline = Deadline(deadline_s or store.settings.training_deadline_s)
    with deadline_of(deadline.left("the catalog size")):
        total_products = max(await store.products.count_documents({}), 1)
    products: list[Product] = []
    async for batch in _batches(
        store.batch_collection("products"), {}, {"_id": 0}, "id", deadline, "products"
    ):
        products.extend(Product.from_doc(doc) for doc in batch)
        report("products", len(products) / total_products)
    report("products", 1.0)
    query = {"timestamp": {"$gte": start, "$lt": end}, "type": {"$in": TRAINING_EVENT_TYPES}}
    events = store.batch_collection("events")
    with deadline_of(deadline.left("the event count")):
        total_events = max(await events.count_documents(query), 1)
    builder = InteractionsBuilder([p.id for p in products])
    projection = dict.fromkeys(EVENT_FIELDS, 1)
    seen = 0
    async for batch in _batches(events, query, projection, "_id", deadline, "events"):
        for doc in batch:
            builder.add(doc)
        seen += len(batch)
        report("events", seen / total_events)
    report("events", 1.0)
    return TrainingData(
        products=products,
        events=builder.build(),
        window_start=start,
        window_end=end,
        progress=progress,
    )


def data_sizes(data: TrainingData) -> dict[str, int]:
    events = data.interactions
    return {
        "products": len(data.products),
        "events": len(events),
        "shoppers": events.n_users,
        "products_with_events": len(set(events.item[events.item >= 0].tolist())),
    }


# -- fitting -------------------------------------------------------------------------------


async def fit_all(recommenders: Mapping[str, object], data: TrainingData) -> dict[str, float]:
    """Fit each trainable recommender in turn; returns seconds per strategy. A strategy whose
    fit fails is logged and left out (it keeps serving its previous model)."""
    seconds: dict[str, float] = {}
    for name, recommender in recommenders.items():
        if not isinstance(recommender, Trainable):
            continue
        started = time.perf_counter()
        try:
            await recommender.fit(data)
        except Exception:
            log.exception("training %s failed; it keeps its previous model", name)
            continue
        seconds[name] = time.perf_counter() - started
        data.report(name, 1.0)
    return seconds


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
    ``tuning`` chosen for it (`tune_shop`), if any."""
    started = time.perf_counter()
    if data is None:
        data = await load_training_data(
            store, window_days=settings.training_window_days, now=now, progress=progress
        )
    fit_seconds = await fit_all(recommenders, data)
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


# -- the built-in strategies, outside the service ------------------------------------------


def builtin_recommenders(settings: Settings, store: Store) -> dict[str, Recommender]:
    """The built-in recommenders, configured from ``[strategies.<name>]`` of the config file
    (for commands that run without the plugin host; host-only keys such as ``timeout_ms``
    are ignored here)."""
    from shopfront.plugins.recommenders import SPECS

    sections: Mapping[str, Any] = {}
    if settings.config_file is not None:
        try:
            with settings.config_file.open("rb") as fh:
                sections = tomllib.load(fh).get("strategies", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(
                f"SHOPFRONT_CONFIG: cannot read {settings.config_file}: {exc}"
            ) from exc
    built: dict[str, Recommender] = {}
    for spec in SPECS:
        given = sections.get(spec.name, {})
        config = {
            **spec.default_config,
            **{k: v for k, v in given.items() if k in spec.default_config},
        }
        setup = StrategySetup(
            name=spec.name,
            config=config,
            settings=settings,
            store=store,
            log=logging.getLogger(f"shopfront.strategy.{spec.name}"),
        )
        try:
            recommender = spec.factory(setup)
        except ValueError as exc:
            raise ConfigError(f"[strategies.{spec.name}] {exc}") from exc
        if not isinstance(recommender, Recommender):
            raise ConfigError(f"strategy {spec.name!r}: its factory returned no recommender")
        built[spec.name] = recommender
    return built


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
