"""Privacy: consent, export, erasure, and the rules that keep raw identifiers out of events.

- **Identifiers are opaque.** A shopper id (or session, order, event id) that looks like an
  e-mail address or an IP address is refused; e-mail and IP addresses inside free text (search
  queries, reviews) are replaced by ``[email]`` / ``[ip]`` before anything is stored. The
  service never records a request's IP address.
- **Consent.** `set_consent` records the personalization flag (in ``consents``, and a copy in
  the profile). Withdrawing it deletes the shopper's behaviour data (the registry's
  ``withdrawn`` collections: events, session links, served slots, exposures, attributions)
  and reduces the profile to the flag; from then on their events only feed anonymous
  per-product counts (see `shopfront.shoppers.events`).
- **One registry.** Every collection holding a shopper's or a session's id is listed in
  `shopfront.platform.personal_data.PERSONAL_DATA`; export, erasure, withdrawal and retention
  read it. A shopper's sessions are the ones linked by `identify` plus every session id stored
  beside their user id; documents of those sessions that name no shopper are theirs too.
- **Export** (`export_user_data`) returns, as one JSON document, the shopper's documents in
  every registry collection, the profile as the service reads it, and what each plugin's
  ``export_user_data`` hook holds (the registered exporters).
- **Erasure** (`erase_user`) first records tombstones (hashes of the user id and of each of
  their session ids, so later writes for them are refused), then deletes from every registry
  collection, then calls the registered erasers (plugin state). It is idempotent and reports
  counts per collection.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from shopfront.platform.money import Money
from shopfront.platform.personal_data import PERSONAL_DATA, PersonalCollection
from shopfront.platform.store import DuplicateKeyError, Store, UpdateOne
from shopfront.shoppers import profiles

log = logging.getLogger(__name__)

MAX_ID_LEN = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EMAIL = re.compile(r"[^\s@<>()\[\]{},;:\"']+@[^\s@<>()\[\]{},;:\"']+\.[A-Za-z]{2,}")
# Candidates only; each is confirmed with `ipaddress` before it is treated as an address.
# IPv6 may end in a dotted quad (::ffff:1.2.3.4) or carry a zone (fe80::1%eth0); IPv4 may be
# followed by a port (1.2.3.4:8080).
_IPV6 = (
    r"(?<![\w.:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"
    r"(?::\d{1,3}(?:\.\d{1,3}){3})?(?:%[\w.]+)?(?![\w.:])"
)
_IPV4 = r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])"
_IP_CANDIDATE = re.compile(f"{_IPV6}|{_IPV4}")
# Collections that hold behaviour data, deleted when consent is withdrawn.
BEHAVIOUR_DATA: tuple[PersonalCollection, ...] = tuple(c for c in PERSONAL_DATA if c.withdrawn)
TOMBSTONES = "tombstones"
# The consent answers shoppers gave ({_id: shopper id, personalization, updated_at}): what
# ingestion checks. Small documents, so checking a whole batch's shoppers stays cheap; the
# profile carries a copy of the flag for the one-read storefront path.
CONSENTS = "consents"


class PrivacyError(ValueError):
    """A privacy request cannot be carried out as asked; the message says why."""


class UserErased(PrivacyError):
    """The shopper was erased: Shopfront stores nothing more about them."""


# -- identifiers and free text -----------------------------------------------------------------


def looks_like_email(text: str) -> bool:
    return bool(_EMAIL.search(text))


def is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return False
    return True


def identifier_problem(value: str) -> str | None:
    """Why ``value`` cannot be used as an opaque id, or None."""
    if not value.strip():
        return "must not be blank"
    if len(value) > MAX_ID_LEN:
        return f"must be at most {MAX_ID_LEN} characters"
    if _CONTROL.search(value):
        return "must not contain control characters"
    if looks_like_email(value):
        return "looks like an e-mail address; send an opaque id, never personal data"
    if is_ip_address(value):
        return "looks like an IP address; send an opaque id, never personal data"
    return None


def check_user_id(user_id: str) -> str:
    """``user_id`` if it is a usable opaque shopper id, else `PrivacyError`."""
    problem = identifier_problem(user_id)
    if problem:
        raise PrivacyError(f"userId: {problem}")
    return user_id


def redact(text: str) -> str:
    """``text`` with e-mail addresses and IP addresses replaced by ``[email]`` / ``[ip]``."""
    text = _EMAIL.sub("[email]", text)
    return _IP_CANDIDATE.sub(lambda m: "[ip]" if is_ip_address(m.group(0)) else m.group(0), text)


# -- tombstones --------------------------------------------------------------------------------


def tombstone_id(user_id: str) -> str:
    """The tombstone key of a shopper: a hash, so the erased id itself is not kept."""
    return hashlib.sha256(b"shopfront-erased\x00" + user_id.encode()).hexdigest()


async def erased_users(store: Store, user_ids: Iterable[str | None]) -> set[str]:
    """Which of ``user_ids`` (shopper or session ids) were erased (one indexed round trip)."""
    by_hash = {tombstone_id(u): u for u in set(user_ids) if u}
    if not by_hash:
        return set()
    docs = await store.collection(TOMBSTONES).find({"_id": {"$in": list(by_hash)}}).to_list(None)
    return {by_hash[d["_id"]] for d in docs}


async def _bury(store: Store, user_id: str, sessions: Sequence[str], now: datetime) -> bool:
    """Record tombstones for the shopper and their sessions; True when the shopper's is new."""
    tombstones = store.collection(TOMBSTONES)
    created = await tombstones.update_one(
        {"_id": tombstone_id(user_id)}, {"$setOnInsert": {"erased_at": now}}, upsert=True
    )
    if sessions:
        await tombstones.bulk_write(
            [
                UpdateOne(
                    {"_id": tombstone_id(s)}, {"$setOnInsert": {"erased_at": now}}, upsert=True
                )
                for s in sessions
            ],
            ordered=False,
        )
    return created.upserted_id is not None


async def is_erased(store: Store, user_id: str) -> bool:
    return bool(await erased_users(store, [user_id]))


# -- consent -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentState:
    user_id: str
    personalization: bool
    updated_at: datetime
    deleted: Mapping[str, int] = field(default_factory=dict)  # on withdrawal, per collection


async def withheld_consent(store: Store, user_ids: Iterable[str]) -> set[str]:
    """Which of ``user_ids`` must not be personalized (withdrawn, or never given when the
    settings require consent), in one round trip to the small ``consents`` collection."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return set()
    docs = await store.collection(CONSENTS).find(consent_query(wanted)).to_list(None)
    given = {d["_id"]: bool(d.get("personalization")) for d in docs}
    default = not store.settings.personalization_requires_consent
    return {u for u in wanted if not given.get(u, default)}


def consent_query(user_ids: list[str]) -> dict[str, Any]:
    """The consent lookup's filter (a test checks that it is answered from an index)."""
    return {"_id": {"$in": user_ids}}


async def set_consent(
    store: Store, user_id: str, personalization: bool, now: datetime | None = None
) -> ConsentState:
    """Record the shopper's personalization consent. Withdrawing it also deletes their
    behaviour data and reduces the profile to the consent flag."""
    check_user_id(user_id)
    if await is_erased(store, user_id):
        raise UserErased("userId: this shopper was erased; nothing is stored about them")
    now = now or datetime.now(UTC)
    consent = {"personalization": personalization, "updated_at": now}
    # The consents record first: ingestion reads it, so from here on it takes the new answer.
    await _upsert(store, CONSENTS, {"_id": user_id}, {"$set": consent})
    if personalization:
        await _upsert(
            store,
            "profiles",
            profiles.profile_key(user_id),
            {
                "$set": {"consent": consent, "updated_at": now},
                "$setOnInsert": {"user_id": user_id, "created_at": now},
            },
        )
        return ConsentState(user_id, True, now)
    deleted = await withdraw(store, user_id, consent)
    return ConsentState(user_id, False, now, deleted)


async def withdraw(
    store: Store, user_id: str, consent: Mapping[str, Any] | None = None
) -> dict[str, int]:
    """Reduce the shopper to their consent flag: delete their behaviour data and everything in
    the profile but the flag. Idempotent."""
    if consent is None:
        doc = await store.collection(CONSENTS).find_one({"_id": user_id}, {"_id": 0})
        consent = doc or {"personalization": False, "updated_at": datetime.now(UTC)}
    await store.collection("profiles").replace_one(
        profiles.profile_key(user_id),
        {"user_id": user_id, "consent": dict(consent), "updated_at": consent["updated_at"]},
        upsert=True,
    )
    return await _delete(store, user_id, await shopper_sessions(store, user_id), BEHAVIOUR_DATA)


async def _upsert(
    store: Store, collection: str, query: dict[str, Any], update: dict[str, Any]
) -> None:
    coll = store.collection(collection)
    try:
        await coll.update_one(query, update, upsert=True)
    except DuplicateKeyError:  # another request created the document first: now it matches
        await coll.update_one(query, update, upsert=True)


# -- erasure -----------------------------------------------------------------------------------

# Take the shopper id and their session ids.
Eraser = Callable[[str, Sequence[str]], Awaitable[int]]


@dataclass(frozen=True)
class PluginExport:
    """What plugins hold about a shopper (``data``, by plugin name), and the plugins that
    could not say (``failures``: plugin name -> why)."""

    data: Mapping[str, Any]
    failures: Mapping[str, str] = field(default_factory=dict)


Exporter = Callable[[str, Sequence[str]], Awaitable[PluginExport]]


@dataclass
class PrivacyHooks:
    """Where the plugin host registers its callbacks, each given the shopper id and their
    session ids: ``erasers`` (``on_user_erased``) return how many records they deleted;
    ``exporters`` (``export_user_data``) return what they hold about the shopper, by plugin."""

    erasers: list[Eraser] = field(default_factory=list)
    exporters: list[Exporter] = field(default_factory=list)


@dataclass(frozen=True)
class ErasureReport:
    user_id: str
    deleted: Mapping[str, int]  # collection (or "plugin:<name>") -> documents deleted
    already_erased: bool
    failures: tuple[str, ...] = ()  # erasers that failed (the request can be repeated)
    sessions: tuple[str, ...] = ()  # the shopper's session ids, tombstoned with them

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    @property
    def complete(self) -> bool:
        return not self.failures


def _eraser_name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))


async def erase_user(
    store: Store, user_id: str, *, erasers: Sequence[Eraser] = (), now: datetime | None = None
) -> ErasureReport:
    """Forget the shopper everywhere; see the module docstring. Safe to repeat."""
    check_user_id(user_id)
    now = now or datetime.now(UTC)
    sessions = await shopper_sessions(store, user_id)
    # The tombstones go first, so a write running concurrently either sees them or wrote
    # before them (and is deleted below, or deletes its own writes when it re-checks).
    already = not await _bury(store, user_id, sessions, now)
    deleted = await _delete(store, user_id, sessions, PERSONAL_DATA)
    failures: list[str] = []
    for eraser in erasers:
        name = _eraser_name(eraser)
        try:
            deleted[f"plugin:{name}"] = int(await eraser(user_id, sessions) or 0)
        except Exception:
            log.exception("eraser %s failed for an erasure request", name)
            failures.append(name)
    return ErasureReport(user_id, deleted, already, tuple(failures), tuple(sessions))


async def delete_user_data(
    store: Store, user_id: str, *, extra_sessions: Sequence[str] = ()
) -> dict[str, int]:
    """Delete the shopper's documents from every registry collection (and those of their
    sessions, found or given in ``extra_sessions``, that name no shopper). Returns counts per
    collection."""
    sessions = sorted({*await shopper_sessions(store, user_id), *extra_sessions})
    return await _delete(store, user_id, sessions, PERSONAL_DATA)


async def _delete(
    store: Store, user_id: str, sessions: list[str], collections: Sequence[PersonalCollection]
) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in collections:
        coll = store.collection(c.name)
        res = await coll.delete_many({c.user_field: user_id})
        counts[c.name] = int(res.deleted_count)
        if c.session_field is not None and sessions:
            res = await coll.delete_many(unowned_session_query(c, sessions))
            counts[c.name] += int(res.deleted_count)
    return counts


def unowned_session_query(c: PersonalCollection, sessions: list[str]) -> dict[str, Any]:
    """Documents of the shopper's sessions that name no shopper (written before the session
    was identified). Documents of those sessions that name another shopper are theirs."""
    assert c.session_field is not None
    return {c.session_field: {"$in": sessions}, c.user_field: None}


async def shopper_sessions(store: Store, user_id: str) -> list[str]:
    """The shopper's session ids: linked by `identify`, or stored beside their user id in any
    registry collection that records sessions (one indexed query per such collection)."""
    found: set[str] = set()
    for c in PERSONAL_DATA:
        if c.session_field is None:
            continue
        values = await store.collection(c.name).distinct(c.session_field, {c.user_field: user_id})
        found.update(str(v) for v in values if isinstance(v, str) and v)
    found.discard(user_id)
    return sorted(found)


# -- export ------------------------------------------------------------------------------------


async def export_user_data(
    store: Store,
    user_id: str,
    now: datetime | None = None,
    *,
    exporters: Sequence[Exporter] = (),
) -> dict[str, Any]:
    """Everything Shopfront holds about the shopper, as one JSON-ready document::

    {"user_id", "exported_at", "erased", "sessions": [<session ids>],
     "profile": <profile as read, or null>,
     "collections": {<collection>: [<stored documents>], ...},
     "plugins": {<plugin>: <what it holds>, ...},
     "plugin_failures": {<plugin>: <why>, ...}}   (only when a plugin could not answer)
    """
    check_user_id(user_id)
    now = now or datetime.now(UTC)
    sessions = await shopper_sessions(store, user_id)
    collections: dict[str, list[Any]] = {}
    for c in PERSONAL_DATA:
        coll = store.collection(c.name)
        docs = await coll.find({c.user_field: user_id}).to_list(None)
        if c.session_field is not None and sessions:
            # Two queries rather than one `$or`, which the embedded server answers by scanning.
            docs += await coll.find(unowned_session_query(c, sessions)).to_list(None)
        docs.sort(key=lambda d: str(d["_id"]))
        collections[c.name] = [to_json(d) for d in docs]
    profile = await profiles.load_profile(store, user_id, now)
    plugins: dict[str, Any] = {}
    failures: dict[str, str] = {}
    for exporter in exporters:
        try:
            part = await exporter(user_id, sessions)
        except Exception as exc:
            log.exception("exporter %s failed for an export request", _eraser_name(exporter))
            failures[_eraser_name(exporter)] = type(exc).__name__
            continue
        plugins.update({k: to_json(v) for k, v in part.data.items()})
        failures.update(part.failures)
    out: dict[str, Any] = {
        "user_id": user_id,
        "exported_at": now.isoformat(),
        "erased": await is_erased(store, user_id),
        "sessions": sessions,
        "profile": to_json(profile) if profile else None,
        "collections": collections,
        "plugins": plugins,
    }
    if failures:
        out["plugin_failures"] = failures
    return out


def to_json(value: Any) -> Any:
    """A stored document or a read model as plain JSON values (dates as ISO 8601 strings,
    money as {amount, currency}, ids as strings)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Money):
        return value.to_doc()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(to_json(v) for v in value)
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return str(value)  # ObjectId, Decimal128, ...
