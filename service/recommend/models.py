"""The model registry: versioned recommender artifacts in MongoDB, loaded by every instance.

A **model version** is one training run: for each trained strategy, its fitted state as a
``.npz`` file (named numpy arrays, loaded with ``allow_pickle=False``: nothing executable is
ever read back) in the GridFS bucket ``models``, plus one metadata document in the ``models``
collection::

    {version, status: "active" | "inactive", trained_at, activated_at, window_start,
     window_end, sizes: {...}, metrics: {strategy: {metric: value}},
     strategies: {name: {file_id, bytes, fit_seconds}},
     tuning: {repeatability: {...}, slots: [...], holdout: {...}}}

Exactly one version serves: the ``active`` one with the latest ``activated_at`` (activation
marks the others inactive; if an instance dies between the two writes, the latest activation
still wins). Rolling back is activating an older version.

`ModelRegistry` is what a running service holds: strategies are attached to it by name;
``start()`` loads the active version, then polls the collection every
``SHOPFRONT_MODEL_POLL_INTERVAL_S`` and, when another version became active, downloads and
decodes all of its artifacts first and only then hands each strategy its new state (a strategy
swaps its whole state in one assignment, so a request is always served by one model). With
``SHOPFRONT_TRAINING_INTERVAL_MINUTES`` set it also retrains on schedule, under a lease lock so
only one instance trains at a time (see `shopfront.recommend.training`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from shopfront.platform.config import Settings
from shopfront.platform.metrics import Metrics
from shopfront.platform.store import ASCENDING, DESCENDING, PyMongoError, ReturnDocument, Store
from shopfront.recommend.contract import Slot
from shopfront.recommend.tuning import Tuning

log = logging.getLogger("shopfront.models")

COLLECTION = "models"
BUCKET = "models"
ACTIVE = "active"
INACTIVE = "inactive"

Arrays = Mapping[str, npt.NDArray[Any]]


@runtime_checkable
class PersistentModel(Protocol):
    """A trained strategy whose fitted state can be saved and loaded as named arrays.

    The built-in recommenders implement it; a merchant's trainable recommender may too (no
    import needed: any object with these two methods qualifies).
    """

    def dump_model(self) -> Arrays | None:
        """The fitted state as named numpy arrays (no object arrays), or None if unfitted."""
        ...

    def load_model(self, arrays: Arrays) -> None:
        """Serve the state in ``arrays`` from now on, replacing the old one atomically."""
        ...


def training_problem(recommender: object) -> str | None:
    """Why ``recommender`` would silently never serve a trained model, or None.

    Training fits what has ``fit`` and saves what has ``dump_model``/``load_model``; every
    instance then loads the saved version. A recommender with one half and not the other is
    trained and thrown away, or saved and never trained: refused when it is registered."""
    fit = getattr(recommender, "fit", None)
    persistent = isinstance(recommender, PersistentModel)
    if fit is None:
        if persistent:
            return (
                "it saves and loads a model (dump_model/load_model) but has no training "
                "method: add `async def fit(self, data: TrainingData) -> None`"
            )
        return None
    if not inspect.iscoroutinefunction(fit):
        return "its fit method must be `async def fit(self, data: TrainingData) -> None`"
    if not persistent:
        return (
            "it has a fit method but no dump_model/load_model, so what it learns is never "
            "saved and no instance would serve it: add both (see docs/plugins.md)"
        )
    return None


class ModelError(ValueError):
    """A version that does not exist or cannot be used; the message says which."""


# -- encoding ------------------------------------------------------------------------------


def encode(arrays: Arrays) -> bytes:
    """Named arrays as a compressed ``.npz`` file; object arrays are refused (no pickle)."""
    for name, array in arrays.items():
        if np.asarray(array).dtype.hasobject:
            raise ModelError(f"array {name!r} holds Python objects; use numbers or strings")
    buffer = io.BytesIO()
    named: dict[str, Any] = {k: np.asarray(v) for k, v in arrays.items()}
    np.savez_compressed(buffer, **named)
    return buffer.getvalue()


def decode(blob: bytes) -> dict[str, npt.NDArray[Any]]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


# -- metadata ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Artifact:
    strategy: str
    file_id: Any
    bytes: int
    fit_seconds: float


@dataclass(frozen=True)
class ModelVersion:
    version: str
    status: str
    trained_at: datetime
    window_start: datetime
    window_end: datetime
    activated_at: datetime | None = None
    sizes: Mapping[str, int] = field(default_factory=dict)
    metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    artifacts: tuple[Artifact, ...] = ()
    # What training chose for serving with these models (`service.tuning.Tuning.to_doc`).
    tuning: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> ModelVersion:
        return cls(
            version=doc["version"],
            status=doc["status"],
            trained_at=doc["trained_at"],
            window_start=doc["window_start"],
            window_end=doc["window_end"],
            activated_at=doc.get("activated_at"),
            sizes=dict(doc.get("sizes", {})),
            metrics={k: dict(v) for k, v in doc.get("metrics", {}).items()},
            artifacts=tuple(
                Artifact(name, a["file_id"], int(a["bytes"]), float(a["fit_seconds"]))
                for name, a in sorted(doc.get("strategies", {}).items())
            ),
            tuning=dict(doc.get("tuning") or {}),
        )


def new_version_name(now: datetime) -> str:
    """Sortable and unique: the training time, then a random suffix."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


async def save_version(
    store: Store,
    *,
    artifacts: Mapping[str, Arrays],
    fit_seconds: Mapping[str, float],
    window_start: datetime,
    window_end: datetime,
    sizes: Mapping[str, int],
    metrics: Mapping[str, Mapping[str, float]] | None = None,
    tuning: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> ModelVersion:
    """Upload each strategy's artifact, then record the version (inactive until activated).

    The metadata document is written last, so a version that is listed is complete.
    """
    trained_at = now or datetime.now(UTC)
    version = new_version_name(trained_at)
    bucket = store.gridfs(BUCKET)
    strategies: dict[str, dict[str, Any]] = {}
    for name, arrays in artifacts.items():
        blob = encode(arrays)
        file_id = await bucket.upload_from_stream(
            f"{version}/{name}.npz", blob, metadata={"version": version, "strategy": name}
        )
        strategies[name] = {
            "file_id": file_id,
            "bytes": len(blob),
            "fit_seconds": float(fit_seconds.get(name, 0.0)),
        }
    doc = {
        "version": version,
        "status": INACTIVE,
        "trained_at": trained_at,
        "window_start": window_start,
        "window_end": window_end,
        "sizes": dict(sizes),
        "metrics": {k: dict(v) for k, v in (metrics or {}).items()},
        "strategies": strategies,
        "tuning": dict(tuning or {}),
    }
    await store.collection(COLLECTION).insert_one(doc)
    return ModelVersion.from_doc(doc)


async def activate(store: Store, version: str, now: datetime | None = None) -> ModelVersion:
    """Make ``version`` the one every instance serves; raises `ModelError` if unknown."""
    when = now or datetime.now(UTC)
    models = store.collection(COLLECTION)
    found = await models.find_one_and_update(
        {"version": version},
        {"$set": {"status": ACTIVE, "activated_at": when}},
        projection={"_id": 0},
        return_document=ReturnDocument.AFTER,
    )
    if found is None:
        raise ModelError(f"version: no model version {version!r}")
    await models.update_many(
        {"status": ACTIVE, "version": {"$ne": version}}, {"$set": {"status": INACTIVE}}
    )
    return ModelVersion.from_doc(found)


async def active_version(store: Store) -> ModelVersion | None:
    doc = await store.collection(COLLECTION).find_one(
        {"status": ACTIVE}, {"_id": 0}, sort=[("activated_at", DESCENDING)]
    )
    return ModelVersion.from_doc(doc) if doc else None


async def list_versions(
    store: Store, limit: int = 50, after: tuple[datetime, str] | None = None
) -> list[ModelVersion]:
    """Versions, newest first; with ``after`` (trained_at, version), those that sort after
    that one (keyset)."""
    query: dict[str, Any] = {}
    if after is not None:
        trained, version = after
        query["$or"] = [
            {"trained_at": {"$lt": trained}},
            {"trained_at": trained, "version": {"$gt": version}},
        ]
    cursor = (
        store.collection(COLLECTION)
        .find(query, {"_id": 0})
        .sort([("trained_at", DESCENDING), ("version", ASCENDING)])
    )
    return [ModelVersion.from_doc(d) for d in await cursor.limit(limit).to_list(None)]


async def load_artifacts(store: Store, version: ModelVersion) -> dict[str, dict[str, Any]]:
    """Every artifact of ``version``, downloaded and decoded."""
    bucket = store.gridfs(BUCKET)
    loaded: dict[str, dict[str, Any]] = {}
    for artifact in version.artifacts:
        stream = await bucket.open_download_stream(artifact.file_id)
        loaded[artifact.strategy] = decode(await stream.read())
    return loaded


async def prune(store: Store, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` versions, never the active one; returns the names."""
    versions = await list_versions(store, limit=10_000)
    doomed = [v for v in versions[keep:] if v.status != ACTIVE]
    bucket = store.gridfs(BUCKET)
    for v in doomed:
        await store.collection(COLLECTION).delete_one({"version": v.version, "status": INACTIVE})
        for artifact in v.artifacts:
            with contextlib.suppress(PyMongoError):  # already gone
                await bucket.delete(artifact.file_id)
    return [v.version for v in doomed]


# -- the registry a running service holds --------------------------------------------------


class ModelRegistry:
    """Loads the active model version into the attached strategies and keeps it current."""

    def __init__(
        self, store: Store, settings: Settings | None = None, metrics: Metrics | None = None
    ) -> None:
        self.store = store
        self.settings = settings or store.settings
        self.metrics = metrics  # shopfront_model_info follows what is served
        self._strategies: dict[str, list[PersistentModel]] = {}
        self._loaded: ModelVersion | None = None
        self._tuning = Tuning()
        # The configured slots scheduled training tunes (set by the storefront at start-up).
        self.slots: tuple[Slot, ...] = ()
        self._tasks: list[asyncio.Task[None]] = []
        self._refresh_lock = asyncio.Lock()
        self.last_error: str | None = None

    def attach(self, name: str, strategy: object) -> bool:
        """Serve ``strategy`` (strategy name ``name``) from the registry's versions. Objects
        that cannot load a model are ignored (False). Attach before `start`; a strategy
        attached later gets the loaded version at ``refresh(force=True)``."""
        if not isinstance(strategy, PersistentModel):
            return False
        self._strategies.setdefault(name, []).append(strategy)
        return True

    def replace(self, name: str, old: object, new: object) -> None:
        """Serve ``new`` instead of ``old`` from now on (a strategy rebuilt with a new
        configuration; it already holds the model ``old`` served)."""
        kept = [s for s in self._strategies.get(name, []) if s is not old]
        if isinstance(new, PersistentModel):
            kept.append(new)
        self._strategies[name] = kept

    @property
    def attached(self) -> Mapping[str, list[PersistentModel]]:
        return self._strategies

    @property
    def loaded(self) -> ModelVersion | None:
        """The version being served, or None before the first one loads."""
        return self._loaded

    @property
    def tuning(self) -> Tuning:
        """What training chose for serving the loaded version (empty before one loads): the
        storefront serves each configured slot as ``registry.tuning.apply(slot)``."""
        return self._tuning

    async def start(self) -> None:
        """Load the active version (a failure is logged, not fatal: the service serves
        untrained strategies' fallbacks), then keep polling for newly activated versions."""
        try:
            await self.refresh()
        except Exception as exc:  # the poller will retry
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("could not load the active model version: %s", self.last_error)
        self._tasks.append(asyncio.create_task(self._poll(), name="models-poll"))

    def keep(self, task: asyncio.Task[None]) -> None:
        """Stop ``task`` with the registry (the in-service training schedule runs beside it)."""
        self._tasks.append(task)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def refresh(self, force: bool = False) -> bool:
        """Load the active version if it is not the one loaded (or ``force``); True when
        strategies were given a version."""
        async with self._refresh_lock:
            active = await active_version(self.store)
            if active is None:
                return False
            if not force and self._loaded and active.version == self._loaded.version:
                return False
            # Decode everything before touching a strategy: all or nothing.
            artifacts = await load_artifacts(self.store, active)
            for name, strategies in self._strategies.items():
                if name in artifacts:
                    for strategy in strategies:
                        strategy.load_model(artifacts[name])
                    if self.metrics is not None:
                        self.metrics.set_model_version(name, active.version)
            self._loaded = active
            self._tuning = Tuning.from_doc(active.tuning)
            self.last_error = None
            log.info("serving model version %s", active.version)
            return True

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.model_poll_interval_s)
            try:
                await self.refresh()
            except Exception as exc:  # keep serving the loaded version
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("model refresh failed: %s", self.last_error)
