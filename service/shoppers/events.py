"""Behaviour events in: validation, idempotent storage, profile updates, session identity.

`ingest_events` takes a batch of raw event dicts (the GraphQL ``EventInput`` mapped to
snake_case, or the demo generator's output)::

    {"event_id": str, "type": one of EVENT_TYPES, "user_id": str | None,
     "session_id": str | None, "timestamp": aware datetime, "product_id", "quantity",
     "price": {"amount", "currency"} | None (unit price paid), "order_id", "query", "rating",
     "review", "recommendation_id", "position", "page_type"}       (absent keys = None)

and returns one `EventResult` per event, in order: accepted, duplicate, or rejected with a
reason. One bad event never costs the good ones.

How a batch is written (each step a batched round trip, never a read-modify-write):

1. validate every event; look up its products, the shoppers' tombstones and consent, and the
   owners of anonymous sessions that `identify` linked (concurrently);
2. ``insert_many(ordered=False)``: the unique index on ``event_id`` decides what is new — a
   retried event fails with a duplicate-key error and is reported as a duplicate;
3. for the new events: profile updates (`shopfront.shoppers.profiles`, guarded by the batch token)
and
   anonymous ``product_stats`` counts;
4. mark the batch applied in ``ingest_batches``, and re-check tombstones and consent, undoing
   this batch's writes for a shopper erased or withdrawn meanwhile.

If the database fails between 2 and 4, the stored events' batch stays open: a later retry
(which sees duplicates) or `finish_open_batches` applies it; the profile guards make a second
application of anything already applied a no-op. Anonymous per-product counts are not
re-applied (they may undercount after such a failure, never overcount).

Shoppers without personalization consent: their events are stored only as anonymous receipts
(type, product, quantity, the day; a hashed event id so retries still deduplicate) and counted
in ``product_stats``; nothing about them reaches a profile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from shopfront.platform.config import Settings
from shopfront.platform.money import Money, MoneyError
from shopfront.platform.store import BulkWriteError, DuplicateKeyError, Store, UpdateOne
from shopfront.platform.vocabulary import EVENT_TYPES
from shopfront.shoppers import privacy, profiles

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_FUTURE = timedelta(minutes=5)
MAX_QUANTITY = 10_000
MAX_POSITION = 10_000
MAX_QUERY_LEN = 500
MAX_REVIEW_LEN = 5_000
_DUPLICATE_KEY = 11000


class PageType(StrEnum):
    HOME = "home"
    PRODUCT = "product"
    CATEGORY = "category"
    CART = "cart"
    SEARCH = "search"
    CHECKOUT = "checkout"


class EventStatus(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class EventResult:
    """What happened to the event at ``index`` of the batch."""

    index: int
    event_id: str | None
    status: EventStatus
    reason: str | None = None
    # False when only an anonymous receipt was kept (the shopper withheld consent).
    personal: bool = True


class EventError(ValueError):
    """One event is invalid; the message starts with the field at fault."""


EventListener = Callable[[Mapping[str, Any]], Awaitable[None]]


@dataclass
class EventHooks:
    """Where the plugin host registers ``on_event`` callbacks, each called with every stored
    event document after its batch is written (failures are logged, never fail ingestion)."""

    listeners: list[EventListener] = field(default_factory=list)


# -- validation --------------------------------------------------------------------------------

_COMMON = frozenset(
    {"event_id", "type", "user_id", "session_id", "timestamp"}
    | {"recommendation_id", "position", "page_type"}
    | {"scope", "confirmed"}
)
# Per type: fields it needs, and further fields it may carry.
_REQUIRED: dict[str, frozenset[str]] = {
    "view": frozenset({"product_id"}),
    "click": frozenset({"product_id"}),
    "add_to_cart": frozenset({"product_id"}),
    "remove_from_cart": frozenset({"product_id"}),
    "purchase": frozenset({"product_id", "price", "order_id"}),
    "search": frozenset({"query"}),
    "impression": frozenset({"product_id"}),
    "rating": frozenset({"product_id", "rating"}),
    "review": frozenset({"product_id", "review"}),
    "not_interested": frozenset({"product_id"}),
}
_OPTIONAL: dict[str, frozenset[str]] = {
    "view": frozenset({"query"}),
    "click": frozenset({"query"}),
    "add_to_cart": frozenset({"quantity", "price"}),
    "remove_from_cart": frozenset({"quantity", "price"}),
    "purchase": frozenset({"quantity"}),
    "search": frozenset(),
    "impression": frozenset({"query"}),
    "rating": frozenset(),
    "review": frozenset({"rating"}),
    "not_interested": frozenset(),
}
_TYPED_FIELDS = frozenset(
    {"product_id", "quantity", "price", "order_id", "query", "rating", "review"}
)


def _id(raw: Mapping[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise EventError(f"{name}: must be a string, got {type(value).__name__}")
    problem = privacy.identifier_problem(value)
    if problem:
        raise EventError(f"{name}: {problem}")
    return value


def _whole(raw: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = raw.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise EventError(f"{name}: must be a whole number from {low} to {high}, got {value!r}")
    return value


def _text(raw: Mapping[str, Any], name: str, max_len: int) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventError(f"{name}: must be a string")
    value = value.strip()
    if not value:
        raise EventError(f"{name}: must not be blank")
    if len(value) > max_len:
        raise EventError(f"{name}: longer than {max_len} characters")
    return privacy.redact(value)


def _timestamp(raw: Mapping[str, Any], settings: Settings, now: datetime) -> datetime:
    value = raw.get("timestamp")
    if value is None:
        raise EventError("timestamp: is required")
    if not isinstance(value, datetime):
        raise EventError("timestamp: must be a date-time")
    if value.tzinfo is None or value.utcoffset() is None:
        raise EventError("timestamp: must carry a time zone (UTC offset)")
    value = value.astimezone(UTC)
    # MongoDB keeps milliseconds; cut here so stored and computed times agree.
    value = value.replace(microsecond=value.microsecond // 1000 * 1000)
    if value > now + MAX_FUTURE:
        raise EventError("timestamp: more than 5 minutes in the future")
    if value < now - timedelta(days=settings.event_retention_days):
        raise EventError(
            f"timestamp: older than the {settings.event_retention_days}-day retention window"
        )
    return value


def _price(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    value = raw.get("price")
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise EventError("price: must be an amount in minor units and a currency")
    amount = value.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise EventError(f"price.amount: must be whole minor units (e.g. cents), got {amount!r}")
    if amount < 0:
        raise EventError(f"price.amount: must not be negative, got {amount}")
    try:
        return Money(amount, str(value.get("currency", "")).strip().upper()).to_doc()
    except MoneyError as exc:
        raise EventError(f"price.currency: {exc}") from None


def validate_event(raw: Mapping[str, Any], settings: Settings, now: datetime) -> dict[str, Any]:
    """The event as stored (None fields left out), or `EventError` naming the field.

    Product existence and the shopper's state are checked by `ingest_events` (batched).
    """
    if not isinstance(raw, Mapping):
        raise EventError("event: must be an object")
    event_id = _id(raw, "event_id")
    if event_id is None:
        raise EventError("event_id: is required")
    kind = raw.get("type")
    if isinstance(kind, StrEnum):
        kind = kind.value
    if not isinstance(kind, str) or kind.lower() not in _REQUIRED:
        raise EventError(f"type: {kind!r} is not an event type (one of {', '.join(EVENT_TYPES)})")
    kind = kind.lower()
    user_id = _id(raw, "user_id")
    session_id = _id(raw, "session_id")
    if user_id is None and session_id is None:
        raise EventError("user_id: a user_id or a session_id is required")
    page_type = raw.get("page_type")
    if page_type is not None:
        page_type = str(getattr(page_type, "value", page_type)).lower()
        if page_type not in PageType.__members__.values():
            raise EventError(
                f"page_type: {raw.get('page_type')!r} is not a page type "
                f"(one of {', '.join(PageType)})"
            )
    doc: dict[str, Any] = {
        "event_id": event_id,
        "type": kind,
        "user_id": user_id,
        "session_id": session_id,
        "timestamp": _timestamp(raw, settings, now),
        "product_id": _id(raw, "product_id"),
        "quantity": _whole(raw, "quantity", 1, MAX_QUANTITY),
        "price": _price(raw),
        "order_id": _id(raw, "order_id"),
        "query": _text(raw, "query", MAX_QUERY_LEN),
        "rating": _whole(raw, "rating", 1, 5),
        "review": _text(raw, "review", MAX_REVIEW_LEN),
        "recommendation_id": _id(raw, "recommendation_id"),
        "position": _whole(raw, "position", 1, MAX_POSITION),  # 1-based, as served
        "page_type": page_type,
    }
    allowed = _REQUIRED[kind] | _OPTIONAL[kind]
    for name in sorted(_TYPED_FIELDS):
        present = doc[name] is not None
        if name in _REQUIRED[kind] and not present:
            raise EventError(f"{name}: is required for {kind} events")
        if present and name not in allowed:
            raise EventError(f"{name}: not used by {kind} events")
    unknown = sorted(set(raw) - _COMMON - _TYPED_FIELDS)
    if unknown:
        raise EventError(f"{unknown[0]}: not an event field")
    if kind in ("add_to_cart", "remove_from_cart", "purchase") and doc["quantity"] is None:
        doc["quantity"] = 1
    if kind == "purchase":
        # Only purchases the merchant's backend reports count as money facts (spend, orders,
        # segments, revenue); a storefront's are marked unconfirmed and feed recommendations.
        doc["confirmed"] = raw.get("confirmed") is not False
    scope = raw.get("scope")
    if scope is not None:
        if not isinstance(scope, str) or not scope:
            raise EventError("scope: must be a non-empty string")
        doc["client_event_id"] = event_id
        doc["event_id"] = scoped_event_id(scope, event_id)
    return {k: v for k, v in doc.items() if v is not None}


def scoped_event_id(scope: str, event_id: str) -> str:
    """The stored id of a client's ``event_id`` sent in ``scope`` (the API key and the shopper
    or session): ids of one caller never collide with, or squat, another's."""
    digest = hashlib.sha256(scope.encode()).hexdigest()[:24]
    return f"{digest}:{event_id}"


def client_event_id(doc: Mapping[str, Any]) -> str:
    """The event id as its sender gave it."""
    return str(doc.get("client_event_id") or doc["event_id"])


def anonymous_receipt(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What is kept of an event of a shopper without personalization consent: no shopper,
    session, order, text or attribution; the day instead of the time; a hashed event id so a
    retried event is still recognised."""
    day = doc["timestamp"].replace(hour=0, minute=0, second=0, microsecond=0)
    digest = hashlib.sha256(doc["event_id"].encode()).hexdigest()
    receipt: dict[str, Any] = {
        "event_id": f"anon:{digest}",
        "type": doc["type"],
        "timestamp": day,
        "anonymous": True,
    }
    for name in ("product_id", "quantity"):
        if name in doc:
            receipt[name] = doc[name]
    return receipt


# -- ingestion ---------------------------------------------------------------------------------


def _new_token(now: datetime) -> str:
    return f"{int(now.timestamp() * 1000):x}-{secrets.token_hex(6)}"


async def _all(*work: Coroutine[Any, Any, Any]) -> list[Any]:
    """Run concurrently and wait for every one; then raise the first failure, if any."""
    results = await asyncio.gather(*work, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)


async def ingest_events(
    store: Store,
    settings: Settings,
    raw_events: Sequence[Mapping[str, Any]],
    *,
    now: datetime | None = None,
    listeners: Sequence[EventListener] = (),
) -> list[EventResult]:
    """Validate, store and apply events; see the module docstring. One result per event, in
    order. Any number of events is taken (the demo seeder sends thousands); they are written
    in batches of ``settings.max_events_per_call``, the most one `trackEvents` call may send.

    Raises the database's error if it fails; the events can then be sent again.
    """
    now = now or datetime.now(UTC)
    size = settings.max_events_per_call
    results: list[EventResult] = []
    for start in range(0, len(raw_events), size):
        chunk = await _ingest_batch(
            store, settings, raw_events[start : start + size], now, listeners
        )
        results.extend(dataclasses.replace(r, index=r.index + start) for r in chunk)
    return results


async def _ingest_batch(
    store: Store,
    settings: Settings,
    raw_events: Sequence[Mapping[str, Any]],
    now: datetime,
    listeners: Sequence[EventListener],
) -> list[EventResult]:
    results: list[EventResult | None] = [None] * len(raw_events)
    candidates: list[tuple[int, dict[str, Any]]] = []
    first_index: dict[str, int] = {}
    for i, raw in enumerate(raw_events):
        raw_id = raw.get("event_id") if isinstance(raw, Mapping) else None
        raw_id = raw_id if isinstance(raw_id, str) else None
        try:
            doc = validate_event(raw, settings, now)
        except EventError as exc:
            results[i] = EventResult(i, raw_id, EventStatus.REJECTED, str(exc))
            continue
        if doc["event_id"] in first_index:
            reason = f"event_id: same as event {first_index[doc['event_id']]} of this batch"
            results[i] = EventResult(i, client_event_id(doc), EventStatus.DUPLICATE, reason)
            continue
        first_index[doc["event_id"]] = i
        candidates.append((i, doc))

    token = _new_token(now)
    stored, opened, facts, client_ids = await _admit(
        store, settings, candidates, results, token, now
    )
    inserted, duplicates = await _insert(store, stored, results, client_ids)
    personal = [doc for _, doc in inserted if "batch" in doc]
    if personal:
        await _apply(store, settings, personal, token, now, product_stats=inserted, facts=facts)
    else:
        work = [record_product_stats(store, [doc for _, doc in inserted])]
        if opened:  # nothing personal was stored after all: the marker has nothing to track
            work.append(store.collection("ingest_batches").delete_one({"_id": token}))
        await _all(*work)
    if duplicates:
        await _finish_batches_of(store, settings, duplicates, now)
    for listener in listeners:
        for _, doc in inserted:
            try:
                await listener(doc)
            except Exception:
                log.exception("event listener %r failed", listener)
    return [r for r in results if r is not None]


async def _admit(
    store: Store,
    settings: Settings,
    candidates: list[tuple[int, dict[str, Any]]],
    results: list[EventResult | None],
    token: str,
    now: datetime,
) -> tuple[
    list[tuple[int, dict[str, Any]]], bool, dict[str, profiles.ProductFacts], dict[str, str]
]:
    """Batched checks against the database. Returns the documents to insert, whether the
    batch's marker was opened (it is, before any personal event is inserted), the facts of
    the batch's products, and the client ids of anonymous receipts."""
    if not candidates:
        return [], False, {}, {}
    anonymous_sessions = {
        d["session_id"] for _, d in candidates if "user_id" not in d and "session_id" in d
    }
    opened = any("user_id" in d for _, d in candidates)
    work: list[Coroutine[Any, Any, Any]] = [
        profiles.product_facts(
            store, {d["product_id"] for _, d in candidates if "product_id" in d}
        ),
        session_owners(store, anonymous_sessions),
    ]
    if opened:
        work.append(_open_batch(store, token, now))
    facts, owners, *_ = await _all(*work)
    for _, doc in candidates:  # events of an identified session belong to its shopper
        if "user_id" not in doc and doc.get("session_id") in owners:
            doc["user_id"] = owners[doc["session_id"]]
    user_ids = {d["user_id"] for _, d in candidates if "user_id" in d}
    if user_ids and not opened:
        await _open_batch(store, token, now)
        opened = True
    sessions = {d["session_id"] for _, d in candidates if "session_id" in d}
    erased, withheld = await _all(
        privacy.erased_users(store, user_ids | sessions), privacy.withheld_consent(store, user_ids)
    )
    stored: list[tuple[int, dict[str, Any]]] = []
    client_ids: dict[str, str] = {}  # receipt id -> the client's id, reported back only
    for i, doc in candidates:
        pid = doc.get("product_id")
        user_id = doc.get("user_id")
        if pid is not None and pid not in facts:
            results[i] = EventResult(
                i,
                client_event_id(doc),
                EventStatus.REJECTED,
                f"product_id: unknown product {pid!r}",
            )
        elif user_id in erased:
            results[i] = EventResult(
                i,
                client_event_id(doc),
                EventStatus.REJECTED,
                "user_id: this shopper's data was erased; events for them are not stored",
            )
        elif doc.get("session_id") in erased:
            results[i] = EventResult(
                i,
                doc["event_id"],
                EventStatus.REJECTED,
                "session_id: this session's shopper was erased; its events are not stored",
            )
        elif user_id in withheld:
            receipt = anonymous_receipt(doc)
            client_ids[receipt["event_id"]] = client_event_id(doc)
            stored.append((i, receipt))
        else:
            if user_id is not None:
                doc["batch"] = token
            stored.append((i, doc))
    return stored, opened, facts, client_ids


async def _insert(
    store: Store,
    stored: list[tuple[int, dict[str, Any]]],
    results: list[EventResult | None],
    client_ids: Mapping[str, str],
) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """Insert; the unique event_id index sorts new events from duplicates."""
    if not stored:
        return [], []
    failed: dict[int, Mapping[str, Any]] = {}
    try:
        await store.collection("events").insert_many([doc for _, doc in stored], ordered=False)
    except BulkWriteError as exc:
        failed = {e["index"]: e for e in exc.details.get("writeErrors", [])}
    inserted: list[tuple[int, dict[str, Any]]] = []
    duplicates: list[str] = []
    for position, (i, doc) in enumerate(stored):
        doc.pop("_id", None)  # added by the driver; the event's identity is its event_id
        client_id = client_ids.get(doc["event_id"]) or client_event_id(doc)
        error = failed.get(position)
        if error is None:
            personal = doc["event_id"] not in client_ids
            results[i] = EventResult(i, client_id, EventStatus.ACCEPTED, personal=personal)
            inserted.append((i, doc))
        elif error.get("code") == _DUPLICATE_KEY:
            results[i] = EventResult(
                i, client_id, EventStatus.DUPLICATE, "event_id: already received"
            )
            duplicates.append(doc["event_id"])
        else:
            results[i] = EventResult(i, client_id, EventStatus.REJECTED, str(error.get("errmsg")))
    return inserted, duplicates


async def _apply(
    store: Store,
    settings: Settings,
    personal: list[dict[str, Any]],
    token: str,
    now: datetime,
    *,
    product_stats: Sequence[tuple[int, Mapping[str, Any]]] = (),
    facts: Mapping[str, profiles.ProductFacts] | None = None,
) -> None:
    """Profile updates for the batch's personal events, then close the batch."""
    if facts is None:
        facts = await profiles.product_facts(
            store, {e["product_id"] for e in personal if "product_id" in e}
        )
    ops = profiles.build_updates(personal, facts, settings, token, now)
    work = [profiles.apply_updates(store, ops)]
    if product_stats:
        work.append(record_product_stats(store, [doc for _, doc in product_stats]))
    await _all(*work)
    await _all(
        store.collection("ingest_batches").update_one(
            {"_id": token}, {"$set": {"done": True}, "$setOnInsert": {"at": now}}, upsert=True
        ),
        _enforce_privacy(store, {e["user_id"] for e in personal}),
    )


async def _enforce_privacy(store: Store, user_ids: set[str]) -> None:
    """Undo writes for shoppers erased or withdrawn while this batch was being written."""
    erased, withheld = await _all(
        privacy.erased_users(store, user_ids), privacy.withheld_consent(store, user_ids)
    )
    for user_id in erased:
        await privacy.delete_user_data(store, user_id)
    for user_id in withheld - erased:
        await privacy.withdraw(store, user_id)


async def _open_batch(store: Store, token: str, now: datetime) -> None:
    await store.collection("ingest_batches").insert_one({"_id": token, "at": now, "done": False})


async def session_owners(store: Store, session_ids: set[str]) -> dict[str, str]:
    """The shopper each of ``session_ids`` was identified as (unknown sessions left out)."""
    if not session_ids:
        return {}
    docs = (
        await store.collection("session_links")
        .find({"_id": {"$in": sorted(session_ids)}})
        .to_list(None)
    )
    return {str(d["_id"]): str(d["user_id"]) for d in docs}


def product_stats_id(product_id: str, day: datetime) -> str:
    """The ``_id`` of one product's counts for one UTC day (the fixed-width day first, so the
    key is unambiguous whatever the product id holds)."""
    return f"{day:%Y-%m-%d}|{product_id}"


async def record_product_stats(store: Store, docs: Sequence[Mapping[str, Any]]) -> None:
    """Anonymous counts per product, UTC day and event type (and units bought)::

    {_id: "<YYYY-MM-DD>|<product id>", product_id, day, counts: {<type>: n}, units}
    """
    increments: dict[tuple[str, datetime], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for doc in docs:
        pid = doc.get("product_id")
        if not pid:
            continue
        day = doc["timestamp"].replace(hour=0, minute=0, second=0, microsecond=0)
        counts = increments[(pid, day)]
        counts[f"counts.{doc['type']}"] += 1
        if doc["type"] == "purchase":
            counts["units"] += int(doc.get("quantity") or 1)
    ops = [
        UpdateOne(
            {"_id": product_stats_id(pid, day)},
            {"$inc": dict(inc), "$setOnInsert": {"product_id": pid, "day": day}},
            upsert=True,
        )
        for (pid, day), inc in sorted(increments.items())
    ]
    if not ops:
        return
    coll = store.collection("product_stats")
    try:
        await coll.bulk_write(ops, ordered=False)
    except BulkWriteError as exc:
        # Two batches creating the same (product, day) document at once: one insert loses
        # on the unique index; sent again, it matches the winner's document.
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != _DUPLICATE_KEY for e in errors):
            raise
        await coll.bulk_write([ops[e["index"]] for e in errors], ordered=False)


# -- recovery ----------------------------------------------------------------------------------


def recovery_grace(settings: Settings) -> timedelta:
    """How old an open batch must be before another request may finish it: by then the
    request that opened it has finished or timed out (every operation has a deadline)."""
    return timedelta(seconds=max(60.0, 4 * settings.mongo_operation_timeout_ms / 1000))


async def _finish_batches_of(
    store: Store, settings: Settings, event_ids: Sequence[str], now: datetime
) -> None:
    """Finish the open batches the given (duplicate) events were stored by, if any."""
    docs = (
        await store.collection("events")
        .find({"event_id": {"$in": list(event_ids)}, "batch": {"$exists": True}}, {"batch": 1})
        .to_list(None)
    )
    tokens = {d["batch"] for d in docs}
    if tokens:
        await finish_open_batches(store, settings, now=now, tokens=tokens)


async def finish_open_batches(
    store: Store,
    settings: Settings,
    *,
    now: datetime | None = None,
    tokens: set[str] | None = None,
) -> int:
    """Apply batches whose events were stored but whose profile updates did not complete
    (older than `recovery_grace`); returns how many were finished. Safe to run any time,
    from several instances at once."""
    now = now or datetime.now(UTC)
    query: dict[str, Any] = {"done": False, "at": {"$lt": now - recovery_grace(settings)}}
    if tokens is not None:
        query["_id"] = {"$in": sorted(tokens)}
    open_batches = await store.collection("ingest_batches").find(query).to_list(None)
    for batch in open_batches:
        events = (
            await store.collection("events").find({"batch": batch["_id"]}, {"_id": 0}).to_list(None)
        )
        if events:
            await _apply(store, settings, events, batch["_id"], now)
        else:
            await store.collection("ingest_batches").update_one(
                {"_id": batch["_id"]}, {"$set": {"done": True}}
            )
    return len(open_batches)


# -- identify ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentifyResult:
    session_id: str
    user_id: str
    linked: bool  # False when consent is withheld: the session stays anonymous
    merged_events: int  # anonymous events of the session now attributed to the shopper


class IdentifyError(ValueError):
    """`identify` cannot link this session to this shopper; the message says why."""


async def identify(
    store: Store, settings: Settings, session_id: str, user_id: str, now: datetime | None = None
) -> IdentifyResult:
    """Join an anonymous session to a shopper: link it (later anonymous events of the session
    belong to the shopper) and merge its stored anonymous events into the shopper's profile.

    Idempotent: each anonymous event is claimed by exactly one call (an atomic update of its
    ``user_id``), so calling again, or concurrently, merges nothing twice. A session belongs
    to one shopper; linking it to another raises `IdentifyError`.
    """
    for name, value in (("sessionId", session_id), ("userId", user_id)):
        problem = privacy.identifier_problem(value)
        if problem:
            raise IdentifyError(f"{name}: {problem}")
    erased = await privacy.erased_users(store, [user_id, session_id])
    if user_id in erased:
        raise privacy.UserErased("userId: this shopper was erased; nothing is stored about them")
    if session_id in erased:
        raise privacy.UserErased("sessionId: this session's shopper was erased")
    if user_id in await privacy.withheld_consent(store, [user_id]):
        return IdentifyResult(session_id, user_id, linked=False, merged_events=0)
    now = now or datetime.now(UTC)
    links = store.collection("session_links")
    with contextlib.suppress(DuplicateKeyError):  # created concurrently: checked below
        await links.update_one(
            {"_id": session_id},
            {"$setOnInsert": {"user_id": user_id, "linked_at": now}},
            upsert=True,
        )
    link = await links.find_one({"_id": session_id})
    if link is None or link["user_id"] != user_id:
        raise IdentifyError("sessionId: this session is already linked to another shopper")
    token = _new_token(now)
    await _open_batch(store, token, now)
    claimed = await store.collection("events").update_many(
        {"session_id": session_id, "user_id": {"$exists": False}, "anonymous": {"$ne": True}},
        {"$set": {"user_id": user_id, "batch": token}},
    )
    events = await store.collection("events").find({"batch": token}, {"_id": 0}).to_list(None)
    if events:
        await _apply(store, settings, events, token, now)
    else:
        await store.collection("ingest_batches").update_one(
            {"_id": token}, {"$set": {"done": True}}
        )
    return IdentifyResult(session_id, user_id, linked=True, merged_events=claimed.modified_count)


async def recent_events(store: Store, user_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """The shopper's newest stored events first (the merchant console's timeline)."""
    cursor = (
        store.collection("events")
        .find({"user_id": user_id}, {"_id": 0, "batch": 0})
        .sort("timestamp", -1)
        .limit(limit)
    )
    return list(await cursor.to_list(None))
