"""Experiment lifecycle: create, start (placing the experiment in its layer), pause, stop.
(A shopper's assignments and exposures are exported and erased with the rest of their data,
through `shopfront.platform.personal_data`.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shopfront.platform.store import (
    DuplicateKeyError,
    ReturnDocument,
    Store,
)

if TYPE_CHECKING:
    pass
from shopfront.experiments.assignment import HOLDS_RANGE, allocate_range
from shopfront.experiments.definitions import (
    BUCKETS,
    EXPERIMENTS,
    LOCKS,
    ErrorCode,
    Experiment,
    ExperimentError,
    ExperimentStatus,
    KnownStrategies,
    _label,
    parse_experiment,
    shared_areas,
)

# -- lifecycle (merchant mutations) --------------------------------------------------------


async def create_experiment(
    store: Store,
    raw: Mapping[str, Any],
    *,
    now: datetime,
    known: KnownStrategies | None = None,
    experiment_id: str | None = None,
) -> Experiment:
    """Validate and store a new experiment as a draft. Names are unique. ``experiment_id``
    fixes the id (the demo does, so its assignments are reproducible); default: random."""
    exp = parse_experiment(raw, now=now, known=known)
    if experiment_id is not None:
        exp = replace(exp, id=_label(experiment_id, "experiment id"))
    try:
        await store.collection(EXPERIMENTS).insert_one(exp.to_doc())
    except DuplicateKeyError:
        raise ExperimentError(
            f"an experiment named {exp.name!r} (or with id {exp.id!r}) already exists",
            ErrorCode.CONFLICT,
        ) from None
    return exp


async def get_experiment(store: Store, experiment_id: str) -> Experiment | None:
    doc = await store.collection(EXPERIMENTS).find_one({"_id": experiment_id})
    return Experiment.from_doc(doc) if doc else None


async def require_experiment(store: Store, experiment_id: str) -> Experiment:
    exp = await get_experiment(store, experiment_id)
    if exp is None:
        raise ExperimentError(f"no experiment with id {experiment_id!r}", ErrorCode.NOT_FOUND)
    return exp


async def list_experiments(
    store: Store,
    statuses: Sequence[ExperimentStatus] | None = None,
    *,
    limit: int = 0,
    after: tuple[datetime, str] | None = None,
) -> list[Experiment]:
    """Experiments, newest first, optionally only those in ``statuses``; at most ``limit``
    (0: all); with ``after`` (created_at, id), those that sort after that one (keyset)."""
    query: dict[str, Any] = {}
    if statuses:
        query["status"] = {"$in": [s.value for s in statuses]}
    if after is not None:
        created, last_id = after
        query["$or"] = [
            {"created_at": {"$lt": created}},
            {"created_at": created, "_id": {"$gt": last_id}},
        ]
    cursor = store.collection(EXPERIMENTS).find(query).sort([("created_at", -1), ("_id", 1)])
    docs = await cursor.limit(limit).to_list(None)
    return [Experiment.from_doc(d) for d in docs]


async def start_experiment(store: Store, experiment_id: str, *, now: datetime) -> Experiment:
    """Start a draft, or resume a paused experiment (same bucket range, same shoppers).

    Refused (`ExperimentError`, CONFLICT) when a running or paused experiment of another
    layer changes an overlapping area, or the layer has no free range large enough. The
    check and the allocation are one transaction that also writes the shared lock document,
    so concurrent starts are serialised.
    """
    experiments = store.collection(EXPERIMENTS)
    locks = store.collection(LOCKS)

    async def work(session: Any) -> dict[str, Any]:
        doc = await experiments.find_one({"_id": experiment_id}, session=session)
        if doc is None:
            raise ExperimentError(f"no experiment with id {experiment_id!r}", ErrorCode.NOT_FOUND)
        exp = Experiment.from_doc(doc)
        if exp.status is ExperimentStatus.RUNNING:
            raise ExperimentError(f"experiment {exp.name!r} is already running", ErrorCode.CONFLICT)
        if exp.status is ExperimentStatus.STOPPED:
            raise ExperimentError(
                f"experiment {exp.name!r} is stopped and cannot restart; create a new one",
                ErrorCode.CONFLICT,
            )
        if exp.ends_at is not None and exp.ends_at <= now:
            raise ExperimentError(
                f"experiment {exp.name!r} ended at {exp.ends_at.isoformat()}", ErrorCode.CONFLICT
            )
        # Writing the lock first makes two concurrent starts conflict (one retries and then
        # sees the other's range), where reads alone would let both commit.
        await locks.update_one(
            {"_id": "allocation"},
            {"$inc": {"version": 1}, "$set": {"at": now}},
            upsert=True,
            session=session,
        )
        others = [
            Experiment.from_doc(d)
            for d in await experiments.find(
                {"status": {"$in": HOLDS_RANGE}, "_id": {"$ne": exp.id}}, session=session
            ).to_list(None)
        ]
        for other in others:
            if other.layer == exp.layer:
                continue
            if clash := shared_areas(exp.areas, other.areas):
                raise ExperimentError(
                    f"experiment {exp.name!r} (layer {exp.layer!r}) changes "
                    f"{', '.join(clash)}, as does {other.status.value} experiment "
                    f"{other.name!r} in layer {other.layer!r}: a shopper could be in both. "
                    f"Put it in layer {other.layer!r} to split the traffic, or stop "
                    f"{other.name!r} first",
                    ErrorCode.CONFLICT,
                )
        bucket_range = exp.bucket_range
        if bucket_range is None:
            taken = [o.bucket_range for o in others if o.layer == exp.layer and o.bucket_range]
            bucket_range = allocate_range(exp.traffic, taken)
            if bucket_range is None:
                free = BUCKETS - sum(hi - lo for lo, hi in taken)
                raise ExperimentError(
                    f"layer {exp.layer!r} has no free range for {exp.traffic:.2%} of traffic "
                    f"({free / BUCKETS:.2%} is free, maybe not in one piece): lower the "
                    "traffic share, use another layer, or stop an experiment of this layer",
                    ErrorCode.CONFLICT,
                )
        updated: dict[str, Any] = await experiments.find_one_and_update(
            {"_id": exp.id, "status": {"$in": [ExperimentStatus.DRAFT.value, "paused"]}},
            {
                "$set": {
                    "status": ExperimentStatus.RUNNING.value,
                    "bucket_range": list(bucket_range),
                    "started_at": exp.started_at or now,
                    "paused_at": None,
                    "updated_at": now,
                }
            },
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if updated is None:  # changed between the read and the write (same transaction)
            raise ExperimentError(f"experiment {exp.name!r} changed meanwhile; try again")
        return updated

    return Experiment.from_doc(await store.in_transaction(work))


async def _transition(
    store: Store,
    experiment_id: str,
    *,
    allowed_from: Sequence[ExperimentStatus],
    to: ExperimentStatus,
    stamp: str,
    now: datetime,
) -> Experiment:
    doc = await store.collection(EXPERIMENTS).find_one_and_update(
        {"_id": experiment_id, "status": {"$in": [s.value for s in allowed_from]}},
        {"$set": {"status": to.value, stamp: now, "updated_at": now}},
        return_document=ReturnDocument.AFTER,
    )
    if doc is not None:
        return Experiment.from_doc(doc)
    exp = await require_experiment(store, experiment_id)
    allowed = " or ".join(s.value for s in allowed_from)
    raise ExperimentError(
        f"experiment {exp.name!r} is {exp.status.value}; only a {allowed} experiment can be "
        f"{to.value}",
        ErrorCode.CONFLICT,
    )


async def pause_experiment(store: Store, experiment_id: str, *, now: datetime) -> Experiment:
    """Stop assigning shoppers but keep the bucket range, so resuming restores the split."""
    return await _transition(
        store,
        experiment_id,
        allowed_from=[ExperimentStatus.RUNNING],
        to=ExperimentStatus.PAUSED,
        stamp="paused_at",
        now=now,
    )


async def stop_experiment(store: Store, experiment_id: str, *, now: datetime) -> Experiment:
    """End the experiment for good; its range is released and its report window closes."""
    return await _transition(
        store,
        experiment_id,
        allowed_from=[ExperimentStatus.DRAFT, ExperimentStatus.RUNNING, ExperimentStatus.PAUSED],
        to=ExperimentStatus.STOPPED,
        stamp="stopped_at",
        now=now,
    )
