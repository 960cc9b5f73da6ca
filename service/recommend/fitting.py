"""What training learns from, and fitting strategies to it: the catalog and events read in
batches under the job's own deadline, the built-in recommenders, fitting each one.

`shopfront.recommend.training` (saving versions), evaluation and tuning all build on it.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shopfront.catalog.products import Product
from shopfront.platform.config import ConfigError, Settings
from shopfront.platform.store import Store
from shopfront.platform.store import deadline as deadline_of
from shopfront.platform.strategy_setup import StrategySetup
from shopfront.platform.vocabulary import EVENT_TYPES
from shopfront.recommend.contract import Recommender, Trainable, TrainingData
from shopfront.recommend.interactions import InteractionsBuilder

if TYPE_CHECKING:
    pass

# Impressions carry no product preference the built-ins learn from, and can outnumber every
# other event ten to one: they are not loaded for training. Searches are: the content model
# learns which products a query leads to (the product viewed or bought next).
TRAINING_EVENT_TYPES: tuple[str, ...] = tuple(t for t in EVENT_TYPES if t != "impression")
EVENT_FIELDS = (
    "type", "user_id", "session_id", "timestamp", "product_id", "quantity", "order_id", "rating",
    "query", "review",
)  # fmt: skip
BATCH = 10_000

log = logging.getLogger("shopfront.training")

# Reports a stage's name and how far it got (0 to 1).
Progress = Callable[[str, float], None]


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
    """``query``'s documents by ascending ``key``, in batches of `BATCH` (one cursor, fetched
    `BATCH` at a time). The whole read runs under what is left of the job's deadline, not the
    per-request ``timeoutMS`` that a long read would outlive."""
    with deadline_of(deadline.left(step)):
        cursor = collection.find(query, projection).sort(key, 1).batch_size(BATCH)
        batch: list[dict[str, Any]] = []
        async for doc in cursor:
            batch.append(doc)
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch


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
