"""The exposure log: which variant served what to whom, first exposures and assignments."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shopfront.platform.batch_writer import BatchWriter
from shopfront.platform.store import (
    BulkWriteError,
    Store,
    UpdateOne,
)

if TYPE_CHECKING:
    pass
from shopfront.experiments.assignment import Assignment, unit_hash
from shopfront.experiments.definitions import ASSIGNMENTS, EXPOSURES
from shopfront.experiments.overrides import (
    assignment_for_slot,
)

log = logging.getLogger(__name__)


# -- exposure ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServedItem:
    product_id: str
    strategy: str
    position: int


@dataclass(frozen=True)
class ServedSlot:
    """One slot of a storefront response, as the exposure log records it."""

    recommendation_id: str
    slot: str
    items: tuple[ServedItem, ...]

    @property
    def strategies(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i.strategy for i in self.items))


@dataclass(frozen=True)
class ServedOffer:
    code: str
    strategy: str
    campaign_id: str | None = None


@dataclass(frozen=True)
class ExposureResult:
    sampled: bool
    exposures_written: int
    first_exposures: int  # assignment documents created or updated by this call


class FirstExposures:
    """(experiment, shopper key) pairs this process already recorded, so repeat requests of
    a shopper do not write their assignment again. Bounded, least recently used out."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __contains__(self, key: tuple[str, str]) -> bool:
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        return False

    def add(self, key: tuple[str, str]) -> None:
        self._seen[key] = None
        self._seen.move_to_end(key)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)


def _slot_owners(
    assignments: Sequence[Assignment],
    slots: Sequence[ServedSlot],
    slot_assignments: Mapping[str, Assignment] | None,
) -> dict[str, Assignment | None]:
    """Which assignment changed each served slot: as `apply_overrides` decided when given
    (so exposures agree with the recommendation documents), else from the served items."""
    if slot_assignments is not None:
        return {s.slot: slot_assignments.get(s.slot) for s in slots}
    return {s.slot: assignment_for_slot(assignments, s.slot, s.strategies) for s in slots}


def exposed_assignments(
    assignments: Sequence[Assignment],
    slots: Sequence[ServedSlot],
    offers: Sequence[ServedOffer],
    *,
    cart_priced: bool = False,
    slot_assignments: Mapping[str, Assignment] | None = None,
) -> list[Assignment]:
    """The assignments whose experiment changed something this response actually served."""
    owners = {
        a.experiment_id for a in _slot_owners(assignments, slots, slot_assignments).values() if a
    }
    offer_strategies = [o.strategy for o in offers]
    out = []
    for a in assignments:
        if (
            a.experiment_id in owners
            or (bool(offers) and a.changes_offers(offer_strategies))
            or (cart_priced and a.changes_promotions())
        ):
            out.append(a)
    return out


async def _bulk_upsert(collection: Any, ops: list[UpdateOne]) -> None:
    """Unordered upserts; an upsert that lost a race on a unique index is retried once
    (the retry finds the winner's document and updates it)."""
    if not ops:
        return
    try:
        await collection.bulk_write(ops, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in errors):
            raise
        retry = [ops[e["index"]] for e in errors]
        await collection.bulk_write(retry, ordered=False)


def assignment_document(
    assignment: Assignment,
    shopper: str,
    user_id: str | None,
    session_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    """An ``assignments`` document for a first exposure at ``now``."""
    return {
        "experiment_id": assignment.experiment_id,
        "shopper": shopper,
        "variant": assignment.variant,
        "source": "exposure",
        "override": False,
        "first_exposed_at": now,
        "recorded_at": now,
        "user_id": user_id,
        "session_id": session_id,
    }


def _exposure_base(
    request_id: str,
    user_id: str | None,
    session_id: str | None,
    weight: float,
    owner: Assignment | None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "at": now,
        "shopper": user_id or session_id,
        "user_id": user_id,
        "session_id": session_id,
        "weight": weight,
        "experiment_id": owner.experiment_id if owner else None,
        "variant": owner.variant if owner else None,
    }


def slot_exposure_document(
    slot: ServedSlot,
    request_id: str,
    user_id: str | None,
    session_id: str | None,
    weight: float,
    owner: Assignment | None,
    now: datetime,
) -> dict[str, Any]:
    """An ``exposures`` document for one served slot (``_id`` is its recommendationId)."""
    return {
        "_id": slot.recommendation_id,
        **_exposure_base(request_id, user_id, session_id, weight, owner, now),
        "kind": "slot",
        "slot": slot.slot,
        "items": [
            {"product_id": i.product_id, "strategy": i.strategy, "position": i.position}
            for i in slot.items
        ],
    }


def offer_exposure_document(
    offer: ServedOffer,
    request_id: str,
    user_id: str | None,
    session_id: str | None,
    weight: float,
    owner: Assignment | None,
    now: datetime,
) -> dict[str, Any]:
    """An ``exposures`` document for one coupon offer shown."""
    return {
        "_id": f"{request_id}:offer:{offer.code}",
        **_exposure_base(request_id, user_id, session_id, weight, owner, now),
        "kind": "offer",
        "strategy": offer.strategy,
        "code": offer.code,
        "campaign_id": offer.campaign_id,
    }


async def record_exposure(
    store: Store,
    *,
    request_id: str,
    user_id: str | None,
    session_id: str | None,
    assignments: Sequence[Assignment],
    slots: Sequence[ServedSlot] = (),
    offers: Sequence[ServedOffer] = (),
    cart_priced: bool = False,
    sample_rate: float = 1.0,
    now: datetime,
    seen: FirstExposures | None = None,
    slot_assignments: Mapping[str, Assignment] | None = None,
    writer: BatchWriter | None = None,
) -> ExposureResult:
    """Record what one storefront response served. Call it after the response is built (it
    writes; the storefront should not wait for it).

    - For each assignment whose experiment changed something served: the shopper's
      first-exposure document in ``assignments`` (upsert; never sampled, because exposed
      shoppers are the experiment's denominator). ``seen`` skips pairs already written.
    - If the request is sampled (a hash of ``request_id`` below ``sample_rate``): one
      ``exposures`` document per slot, keyed by its recommendationId, and one per offer,
      each carrying ``weight = 1 / sample_rate`` and the experiment and variant that changed
      it (if any). Re-recording the same request changes nothing.

    Pass `StorefrontOverrides.slot_assignments` as ``slot_assignments`` so the exposure log
    names the same experiment per slot as the stored recommendation document.

    With ``writer`` (the instance's background writer) the writes are queued, not awaited.
    """
    if not 0 < sample_rate <= 1:
        raise ValueError(f"sample_rate must be above 0 and at most 1, got {sample_rate!r}")
    shopper = user_id or session_id
    first = 0
    if shopper:
        ops = []
        keys = []
        exposed = exposed_assignments(
            assignments, slots, offers, cart_priced=cart_priced, slot_assignments=slot_assignments
        )
        for a in exposed:
            key = (a.experiment_id, shopper)
            if seen is not None and key in seen:
                continue
            keys.append(key)
            doc = assignment_document(a, shopper, user_id, session_id, now)
            first_exposed = doc.pop("first_exposed_at")
            key_fields = {"experiment_id": doc.pop("experiment_id"), "shopper": doc.pop("shopper")}
            ops.append(
                UpdateOne(
                    key_fields,
                    {"$setOnInsert": doc, "$min": {"first_exposed_at": first_exposed}},
                    upsert=True,
                )
            )
        if writer is not None:
            writer.submit(ASSIGNMENTS, ops)
        else:
            await _bulk_upsert(store.collection(ASSIGNMENTS), ops)
        first = len(ops)
        if seen is not None:
            for key in keys:
                seen.add(key)
    sampled = sample_rate >= 1 or unit_hash("sample", request_id) < sample_rate
    if not sampled or not (slots or offers):
        return ExposureResult(sampled=sampled, exposures_written=0, first_exposures=first)
    weight = 1.0 / sample_rate
    docs: list[UpdateOne] = []
    owners = _slot_owners(assignments, slots, slot_assignments)
    for s in slots:
        doc = slot_exposure_document(
            s, request_id, user_id, session_id, weight, owners[s.slot], now
        )
        docs.append(UpdateOne({"_id": doc.pop("_id")}, {"$setOnInsert": doc}, upsert=True))
    for o in offers:
        owner = next((a for a in assignments if a.changes_offers([o.strategy])), None)
        doc = offer_exposure_document(o, request_id, user_id, session_id, weight, owner, now)
        docs.append(UpdateOne({"_id": doc.pop("_id")}, {"$setOnInsert": doc}, upsert=True))
    if writer is not None:
        writer.submit(EXPOSURES, docs)
    else:
        await _bulk_upsert(store.collection(EXPOSURES), docs)
    return ExposureResult(sampled=True, exposures_written=len(docs), first_exposures=first)


class ExposureRecorder:
    """`record_exposure` with the service's sample rate and a per-process `FirstExposures`.
    Register one per process as ``Runtime.exposures``."""

    def __init__(
        self,
        store: Store,
        *,
        sample_rate: float,
        first_exposure_cache: int = 100_000,
        writer: BatchWriter | None = None,
    ):
        if not 0 < sample_rate <= 1:
            raise ValueError(f"sample_rate must be above 0 and at most 1, got {sample_rate!r}")
        self.store = store
        self.sample_rate = sample_rate
        self.seen = FirstExposures(first_exposure_cache)
        self.writer = writer

    async def record(
        self,
        *,
        request_id: str,
        user_id: str | None,
        session_id: str | None,
        assignments: Sequence[Assignment],
        slots: Sequence[ServedSlot] = (),
        offers: Sequence[ServedOffer] = (),
        cart_priced: bool = False,
        now: datetime,
        slot_assignments: Mapping[str, Assignment] | None = None,
    ) -> ExposureResult:
        return await record_exposure(
            self.store,
            request_id=request_id,
            user_id=user_id,
            session_id=session_id,
            assignments=assignments,
            slots=slots,
            offers=offers,
            cart_priced=cart_priced,
            sample_rate=self.sample_rate,
            now=now,
            seen=self.seen,
            slot_assignments=slot_assignments,
            writer=self.writer,
        )
