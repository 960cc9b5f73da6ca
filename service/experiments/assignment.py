"""Deterministic assignment: a shopper's bucket in a layer and the variant it falls in,
with no database round trip (the registry caches running experiments).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shopfront.platform.store import (
    PyMongoError,
    ReturnDocument,
    Store,
)

if TYPE_CHECKING:
    pass
from shopfront.experiments.definitions import (
    _OVERRIDE_OVERLAP,
    ALL,
    ASSIGNMENTS,
    BUCKETS,
    COUPONS,
    EXPERIMENTS,
    PROMOTIONS,
    SLOT_PREFIX,
    STRATEGY_PREFIX,
    Experiment,
    ExperimentError,
    ExperimentStatus,
    Variant,
    VariantOverride,
)

log = logging.getLogger(__name__)

# Experiments that hold their range of a layer's buckets.
HOLDS_RANGE = [ExperimentStatus.RUNNING.value, ExperimentStatus.PAUSED.value]


# -- hashing (pure, fast, deterministic) ---------------------------------------------------


def _hash64(salt: str, key: str) -> int:
    digest = hashlib.blake2b(f"{salt}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def layer_bucket(layer: str, shopper_key: str) -> int:
    """The shopper's traffic bucket (0..BUCKETS-1) in ``layer``."""
    return _hash64("layer:" + layer, shopper_key) % BUCKETS


def unit_hash(salt: str, key: str) -> float:
    """A uniform number in [0, 1) from ``salt`` and ``key``."""
    return _hash64(salt, key) / 2**64


def choose_variant(experiment_id: str, shopper_key: str, variants: Sequence[Variant]) -> Variant:
    """The variant of ``shopper_key``: a hash of the experiment id and the key, mapped onto
    the cumulative weights. The same inputs always give the same variant."""
    point = unit_hash("variant:" + experiment_id, shopper_key) * sum(v.weight for v in variants)
    running = 0.0
    for v in variants:
        running += v.weight
        if point < running:
            return v
    return variants[-1]  # float rounding at the very top of the range


def place_in_layer(
    layer: str,
    live: Sequence[Experiment],
    shopper_key: str,
    overrides: Mapping[tuple[str, str], str] | None = None,
) -> tuple[Experiment, Variant] | None:
    """The experiment and variant of ``shopper_key`` among one layer's live experiments: a
    stored override (inherited at login) first, then the bucket ranges, or None."""
    if overrides:
        for exp in live:
            name = overrides.get((exp.id, shopper_key))
            if name is not None and (v := exp.variant(name)) is not None:
                return exp, v
    bucket = layer_bucket(layer, shopper_key)
    for exp in live:
        if exp.bucket_range and exp.bucket_range[0] <= bucket < exp.bucket_range[1]:
            return exp, choose_variant(exp.id, shopper_key, exp.variants)
    return None


def allocate_range(traffic: float, taken: Iterable[tuple[int, int]]) -> tuple[int, int] | None:
    """First free contiguous bucket range of ``round(traffic * BUCKETS)`` buckets, or None."""
    size = max(1, round(traffic * BUCKETS))
    start = 0
    for lo, hi in sorted(taken):
        if lo - start >= size:
            return start, start + size
        start = max(start, hi)
    if BUCKETS - start >= size:
        return start, start + size
    return None


# -- assignment ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    """A shopper's variant in one experiment, with the override the storefront applies."""

    experiment_id: str
    experiment_name: str
    variant: str
    control: bool
    layer: str
    areas: frozenset[str]
    override: VariantOverride

    @classmethod
    def of(cls, exp: Experiment, variant: Variant) -> Assignment:
        return cls(
            experiment_id=exp.id,
            experiment_name=exp.name,
            variant=variant.name,
            control=variant.control,
            layer=exp.layer,
            areas=exp.areas,
            override=variant.override,
        )

    def changes_slot(self, slot: str, strategies: Iterable[str] = ()) -> bool:
        """Whether this experiment changes ``slot`` (served with ``strategies``)."""
        if ALL in self.areas or SLOT_PREFIX + slot in self.areas:
            return True
        return any(STRATEGY_PREFIX + s in self.areas for s in strategies)

    def changes_offers(self, strategies: Iterable[str] = ()) -> bool:
        if ALL in self.areas or COUPONS in self.areas:
            return True
        return any(STRATEGY_PREFIX + s in self.areas for s in strategies)

    def changes_promotions(self) -> bool:
        return ALL in self.areas or PROMOTIONS in self.areas


@dataclass(frozen=True)
class _Snapshot:
    active: Mapping[str, Experiment]  # running and paused, by id
    layers: tuple[tuple[str, tuple[Experiment, ...]], ...]  # running ones, by layer


class ExperimentRegistry:
    """Running experiments and inherited assignments, held in memory for the hot path.

    `assign` never touches the database. `refresh` reloads from MongoDB (the poller started
    by `start` calls it every ``refresh_seconds``); a failed refresh keeps the last snapshot.
    Register one per process as ``Runtime.experiments``.
    """

    def __init__(self, store: Store, *, refresh_seconds: float = 5.0) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self._snapshot = _Snapshot(active={}, layers=())
        self._overrides: dict[tuple[str, str], str] = {}
        self._overrides_seen: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self.loaded = False

    # -- reading -------------------------------------------------------------------------

    def assign(self, shopper_key: str | None, now: datetime) -> list[Assignment]:
        """The shopper's variants in the running experiments, at most one per layer.

        Pure computation on the in-memory snapshot: an inherited override if one is held for
        the shopper, else the layer's hash bucket and the experiment's variant hash.
        """
        if not shopper_key:
            return []
        out: list[Assignment] = []
        for layer, running in self._snapshot.layers:
            live = [e for e in running if e.is_live(now)]
            placed = place_in_layer(layer, live, shopper_key, self._overrides)
            if placed is not None:
                out.append(Assignment.of(*placed))
        return out

    def experiment(self, experiment_id: str) -> Experiment | None:
        return self._snapshot.active.get(experiment_id)

    def assign_chosen(
        self, shopper_key: str | None, now: datetime, chosen: Mapping[str, str]
    ) -> list[Assignment]:
        """`assign`, with the variant of some running experiments chosen by the caller
        (experiment name or id -> variant name): a chosen experiment replaces the shopper's
        assignment in its layer. The merchant console's preview uses it; nothing is stored.
        Raises `ExperimentError` for an experiment that is not running or an unknown variant.
        """
        placed = {a.layer: a for a in self.assign(shopper_key, now)}
        running = [e for _, exps in self._snapshot.layers for e in exps if e.is_live(now)]
        for wanted, variant_name in chosen.items():
            exp = next((e for e in running if wanted in (e.name, e.id)), None)
            if exp is None:
                raise ExperimentError(f"no running experiment {wanted!r}")
            variant = next((v for v in exp.variants if v.name == variant_name), None)
            if variant is None:
                names = ", ".join(v.name for v in exp.variants)
                raise ExperimentError(
                    f"experiment {exp.name!r} has no variant {variant_name!r} (it has {names})"
                )
            placed[exp.layer] = Assignment.of(exp, variant)
        return list(placed.values())

    @property
    def active(self) -> list[Experiment]:
        return list(self._snapshot.active.values())

    def remember(self, experiment_id: str, shopper_key: str, variant: str) -> None:
        """Hold an inherited assignment now (other instances pick it up on their refresh)."""
        if experiment_id in self._snapshot.active:
            self._overrides[(experiment_id, shopper_key)] = variant

    # -- loading -------------------------------------------------------------------------

    async def refresh(self) -> None:
        docs = (
            await self.store.collection(EXPERIMENTS)
            .find({"status": {"$in": HOLDS_RANGE}})
            .to_list(None)
        )
        active = {e.id: e for e in map(Experiment.from_doc, docs)}
        by_layer: dict[str, list[Experiment]] = {}
        for e in active.values():
            if e.status is ExperimentStatus.RUNNING and e.bucket_range:
                by_layer.setdefault(e.layer, []).append(e)
        layers = tuple(
            (name, tuple(sorted(exps, key=lambda e: (e.bucket_range or (0, 0), e.id))))
            for name, exps in sorted(by_layer.items())
        )
        new_ids = set(active) - set(self._snapshot.active)
        query: dict[str, Any] = {"override": True, "experiment_id": {"$in": sorted(active)}}
        if self._overrides_seen is not None and not new_ids:
            query["recorded_at"] = {"$gte": self._overrides_seen - _OVERRIDE_OVERLAP}
        elif self._overrides_seen is not None:
            # A newly seen experiment: load its overrides in full, the rest incrementally.
            query = {
                "override": True,
                "$or": [
                    {"experiment_id": {"$in": sorted(new_ids)}},
                    {
                        "experiment_id": {"$in": sorted(set(active) - new_ids)},
                        "recorded_at": {"$gte": self._overrides_seen - _OVERRIDE_OVERLAP},
                    },
                ],
            }
        overrides = {k: v for k, v in self._overrides.items() if k[0] in active}
        seen = self._overrides_seen
        cursor = self.store.collection(ASSIGNMENTS).find(
            query, {"experiment_id": 1, "shopper": 1, "variant": 1, "recorded_at": 1}
        )
        async for doc in cursor:
            if doc.get("variant") is not None:
                overrides[(doc["experiment_id"], doc["shopper"])] = doc["variant"]
            at = doc.get("recorded_at")
            if at is not None and (seen is None or at > seen):
                seen = at
        self._snapshot = _Snapshot(active=active, layers=layers)
        self._overrides = overrides
        self._overrides_seen = seen
        self.loaded = True

    async def start(self) -> None:
        """Load once (errors propagate: start-up should know), then poll in the background."""
        await self.refresh()
        if self._task is None:
            self._task = asyncio.create_task(self._poll(), name="experiment-registry")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await self.refresh()
            except PyMongoError as exc:
                log.warning("experiment refresh failed, keeping the last snapshot: %s", exc)
            except Exception:
                log.exception("experiment refresh failed, keeping the last snapshot")


# -- logging in: the user inherits the session's assignments -------------------------------


@dataclass(frozen=True)
class Inherited:
    """What `inherit_assignments` decided for one experiment."""

    experiment_id: str
    variant: str  # the user's variant from now on
    inherited: bool  # True: taken from the session; False: the user's own earlier one kept
    merged: bool  # the session's document now counts as the user's


async def inherit_assignments(
    store: Store,
    session_id: str,
    user_id: str,
    *,
    now: datetime,
    registry: ExperimentRegistry | None = None,
) -> list[Inherited]:
    """Called by `identify(input: {sessionId, userId})`: keep the shopper's variants across login.

    For each layer in which the session was exposed to a running or paused experiment: if
    the user already has an assignment in that layer, the user's (first) assignment stays;
    otherwise the user gets the session's variant (stored with ``override: true`` when the
    user's own hash would place them elsewhere, and handed to ``registry`` at once). When the
    user ends up in the session's experiment, the session document is marked
    ``merged_into`` the user, so the report counts one shopper. Idempotent.
    """
    if not session_id or not user_id or session_id == user_id:
        return []
    active = {
        e.id: e
        for e in map(
            Experiment.from_doc,
            await store.collection(EXPERIMENTS)
            .find({"status": {"$in": HOLDS_RANGE}})
            .to_list(None),
        )
    }
    if not active:
        return []
    assignments = store.collection(ASSIGNMENTS)
    session_docs = await assignments.find(
        {
            "shopper": session_id,
            "experiment_id": {"$in": sorted(active)},
            "first_exposed_at": {"$ne": None},
        }
    ).to_list(None)
    if not session_docs:
        return []
    user_docs = await assignments.find(
        {"shopper": user_id, "experiment_id": {"$in": sorted(active)}}
    ).to_list(None)
    user_layers = {
        active[d["experiment_id"]].layer: d for d in user_docs if d.get("variant") is not None
    }
    # One per layer: the session's earliest exposure there.
    session_docs.sort(key=lambda d: d["first_exposed_at"])
    by_layer: dict[str, dict[str, Any]] = {}
    for d in session_docs:
        by_layer.setdefault(active[d["experiment_id"]].layer, d)
    out: list[Inherited] = []
    for layer, sdoc in sorted(by_layer.items()):
        exp = active[sdoc["experiment_id"]]
        mine = user_layers.get(layer)
        if mine is not None and mine["experiment_id"] != exp.id:
            continue  # the user is in another experiment of this layer: theirs stays
        if mine is None:
            # Where the user's own hash puts them (paused ranges count: they may resume).
            holders = [e for e in active.values() if e.layer == layer and e.bucket_range]
            own = place_in_layer(layer, holders, user_id)
            override = own is None or (own[0].id, own[1].name) != (exp.id, sdoc["variant"])
            mine = await assignments.find_one_and_update(
                {"experiment_id": exp.id, "shopper": user_id},
                {
                    "$setOnInsert": {
                        "variant": sdoc["variant"],
                        "source": "identify",
                        "override": override,
                        "recorded_at": now,
                        "user_id": user_id,
                        "session_id": session_id,
                        "inherited_from": session_id,
                    },
                    "$min": {"first_exposed_at": sdoc["first_exposed_at"]},
                },
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        else:
            await assignments.update_one(
                {"_id": mine["_id"]}, {"$min": {"first_exposed_at": sdoc["first_exposed_at"]}}
            )
        inherited = mine.get("inherited_from") == session_id
        variant = mine["variant"]
        await assignments.update_one(
            {"_id": sdoc["_id"]},
            {"$set": {"merged_into": user_id, "unit_variant": variant, "user_id": user_id}},
        )
        if registry is not None and mine.get("override"):
            registry.remember(exp.id, user_id, variant)
        out.append(Inherited(exp.id, variant, inherited=inherited, merged=True))
    return out
