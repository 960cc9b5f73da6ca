"""Experiments: definitions and their lifecycle, deterministic assignment, the storefront
overrides a variant applies, and the exposure log.

An experiment splits a share of the shoppers (``traffic``, 0 < share <= 1) over weighted
variants, exactly one of them the control. Each variant overrides the storefront: which
strategies fill which slot, their blend weights and parameters, which coupon strategies and
promotions are active, or ``personalization: false`` for a holdout that sees no
personalization at all.

Traffic layers (how a shopper is never in two experiments that change the same thing)
-----------------------------------------------------------------------------------
- Every experiment belongs to a layer (default ``"default"``). A layer's traffic is the
  ``BUCKETS`` buckets of ``hash(layer, shopper key)``. On its first start an experiment gets a
  contiguous bucket range of ``round(traffic * BUCKETS)`` buckets, first fit among the ranges
  held by the layer's running and paused experiments (a paused experiment keeps its range, so
  resuming it brings back the same shoppers). Ranges in a layer never overlap, so a shopper is
  in at most one experiment per layer. Stopping releases the range.
- Different layers hash independently, so a shopper may be in one experiment of every layer.
  That is only safe when those experiments change different things: starting an experiment is
  refused when a running or paused experiment of *another* layer changes an overlapping area
  (see `areas_overlap`). Experiments that need the same slot go in the same layer and split its
  traffic. The check and the range allocation run in one transaction that also bumps a shared
  lock document, so two instances starting conflicting experiments at once cannot both win.
- Inside an experiment the variant comes from a second hash, of the experiment id and the
  shopper key, mapped onto the cumulative variant weights: independent of the bucket, stable
  for a shopper, and proportional to the weights.

Assignment needs no database round trip: `ExperimentRegistry` keeps the running experiments
and the inherited assignments in memory and reloads both every
``SHOPFRONT_EXPERIMENT_REFRESH_SECONDS``, so restarted and parallel instances agree.

Shopper keys and logging in
---------------------------
The shopper key is the user id, or the session id before login (`RequestContext.shopper_key`).
When `identify` links a session to a user, `inherit_assignments` gives the user the session's
variant in every layer where the user has no assignment of its own yet (the first assignment
wins), stores it in ``assignments`` with ``override: true`` when the user's own hash would say
otherwise, and marks the session's document ``merged_into`` the user so reports count the two
keys as one shopper. A layer's stored overrides are consulted before its hash.

Documents
---------
``experiments``: ``{_id, name (unique), description, status: draft|running|paused|stopped,
layer, traffic, bucket_range: [start, end) | null, areas: [str], currency,
variants: [{name, weight, control, override: {personalization, slots: [{slot, strategies|null,
weights: [{strategy, weight}]|null, params, limit|null, enabled}], coupon_strategies|null,
promotions|null, strategy_params: [{strategy, params}]}}], created_at, updated_at,
started_at, paused_at, stopped_at, ends_at}``.

``assignments`` (the unit of analysis; one per experiment and shopper key, never sampled):
``{experiment_id, shopper, variant, source: exposure|identify, override: bool,
first_exposed_at, recorded_at, user_id, session_id, merged_into?, unit_variant?}``.

``exposures`` (the impression log, sampled by ``SHOPFRONT_EXPOSURE_SAMPLE_RATE``; each
document's ``weight`` is 1/rate, so weighted sums estimate the full counts):
``{_id: recommendationId (slots) or "<requestId>:offer:<code>" (offers), kind: slot|offer,
request_id, at, shopper, user_id, session_id, weight, experiment_id|null, variant|null,
slot, items: [{product_id, strategy, position}]}`` for slots;
``{..., kind: "offer", strategy, code, campaign_id}`` for coupon offers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import re
import secrets
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from service.money import is_currency
from service.plugin_api import Slot
from service.store import (
    BulkWriteError,
    DuplicateKeyError,
    PyMongoError,
    ReturnDocument,
    Store,
    UpdateOne,
)

if TYPE_CHECKING:
    from service.runtime import Runtime

log = logging.getLogger(__name__)

EXPERIMENTS = "experiments"
ASSIGNMENTS = "assignments"
EXPOSURES = "exposures"
LOCKS = "experiment_locks"

# Collection -> field holding the shopper's user id, for export and erasure (merge into the
# store's USER_DATA mapping). Session-keyed assignments get ``user_id`` once identified.
USER_DATA_FIELDS: dict[str, str] = {
    ASSIGNMENTS: "user_id",
    EXPOSURES: "user_id",
}

BUCKETS = 10_000
DEFAULT_LAYER = "default"
MAX_VARIANTS = 20
MAX_SLOT_LIMIT = 50
ALL = "*"
COUPONS = "coupons"
PROMOTIONS = "promotions"
SLOT_PREFIX = "slot:"
STRATEGY_PREFIX = "strategy:"
_OVERRIDE_OVERLAP = timedelta(seconds=60)

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_PARAM_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_MAX_PARAMS_JSON = 10_000


class ErrorCode(StrEnum):
    BAD_INPUT = "BAD_USER_INPUT"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"


class ExperimentError(ValueError):
    """An experiment request that cannot be honoured; the message names what is wrong."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


class ExperimentStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


# -- the definition ------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotOverride:
    """How a variant changes one slot. ``None`` fields leave the page's default alone."""

    slot: str
    strategies: tuple[str, ...] | None = None
    weights: Mapping[str, float] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    limit: int | None = None
    enabled: bool = True


@dataclass(frozen=True)
class VariantOverride:
    """The storefront configuration a variant applies on top of the defaults.

    ``personalization=False`` is a holdout: the shopper is served as if they had withheld
    consent (non-personalized strategies only). ``coupon_strategies`` / ``promotions``: the
    exact set active for the variant (``()`` turns them all off), or ``None`` for unchanged.
    ``strategy_params``: parameters per strategy name, passed as `RequestContext.overrides`.
    """

    personalization: bool = True
    slots: tuple[SlotOverride, ...] = ()
    coupon_strategies: tuple[str, ...] | None = None
    promotions: tuple[str, ...] | None = None
    strategy_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def areas(self) -> frozenset[str]:
        """What this override changes, for the mutual-exclusion check."""
        out: set[str] = {SLOT_PREFIX + s.slot for s in self.slots}
        if not self.personalization:
            out.add(ALL)
        if self.coupon_strategies is not None:
            out.add(COUPONS)
        if self.promotions is not None:
            out.add(PROMOTIONS)
        out.update(STRATEGY_PREFIX + name for name in self.strategy_params)
        return frozenset(out)


@dataclass(frozen=True)
class Variant:
    name: str
    weight: float
    control: bool = False
    override: VariantOverride = field(default_factory=VariantOverride)


@dataclass(frozen=True)
class Experiment:
    id: str
    name: str
    status: ExperimentStatus
    traffic: float
    variants: tuple[Variant, ...]
    layer: str = DEFAULT_LAYER
    areas: frozenset[str] = frozenset()
    description: str = ""
    currency: str = "EUR"
    bucket_range: tuple[int, int] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    started_at: datetime | None = None
    paused_at: datetime | None = None
    stopped_at: datetime | None = None
    ends_at: datetime | None = None

    @property
    def control(self) -> Variant:
        return next(v for v in self.variants if v.control)

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)

    def is_live(self, now: datetime) -> bool:
        """Running, and not past its scheduled end: shoppers are being assigned."""
        return self.status is ExperimentStatus.RUNNING and (
            self.ends_at is None or now < self.ends_at
        )

    def report_end(self, now: datetime) -> datetime:
        """Where this experiment's observation window ends (stop, scheduled end, or now)."""
        ends = [t for t in (self.stopped_at, self.ends_at) if t is not None]
        return min([now, *ends])

    # -- documents -----------------------------------------------------------------------

    def to_doc(self) -> dict[str, Any]:
        return {
            "_id": self.id,
            "name": self.name,
            "description": self.description,
            "status": self.status.value,
            "layer": self.layer,
            "traffic": self.traffic,
            "bucket_range": list(self.bucket_range) if self.bucket_range else None,
            "areas": sorted(self.areas),
            "currency": self.currency,
            "variants": [_variant_doc(v) for v in self.variants],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "started_at": self.started_at,
            "paused_at": self.paused_at,
            "stopped_at": self.stopped_at,
            "ends_at": self.ends_at,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Experiment:
        rng = doc.get("bucket_range")
        return cls(
            id=str(doc["_id"]),
            name=doc["name"],
            status=ExperimentStatus(doc["status"]),
            traffic=float(doc["traffic"]),
            variants=tuple(_variant_from_doc(v) for v in doc["variants"]),
            layer=doc.get("layer", DEFAULT_LAYER),
            areas=frozenset(doc.get("areas", ())),
            description=doc.get("description", ""),
            currency=doc.get("currency", "EUR"),
            bucket_range=(int(rng[0]), int(rng[1])) if rng else None,
            created_at=doc.get("created_at"),
            updated_at=doc.get("updated_at"),
            started_at=doc.get("started_at"),
            paused_at=doc.get("paused_at"),
            stopped_at=doc.get("stopped_at"),
            ends_at=doc.get("ends_at"),
        )


def _variant_doc(v: Variant) -> dict[str, Any]:
    o = v.override
    return {
        "name": v.name,
        "weight": v.weight,
        "control": v.control,
        "override": {
            "personalization": o.personalization,
            "slots": [
                {
                    "slot": s.slot,
                    "strategies": list(s.strategies) if s.strategies is not None else None,
                    "weights": (
                        [{"strategy": k, "weight": w} for k, w in s.weights.items()]
                        if s.weights is not None
                        else None
                    ),
                    "params": dict(s.params),
                    "limit": s.limit,
                    "enabled": s.enabled,
                }
                for s in o.slots
            ],
            "coupon_strategies": (
                list(o.coupon_strategies) if o.coupon_strategies is not None else None
            ),
            "promotions": list(o.promotions) if o.promotions is not None else None,
            # Lists of pairs, not maps: strategy names may hold characters MongoDB keys cannot.
            "strategy_params": [
                {"strategy": k, "params": dict(p)} for k, p in o.strategy_params.items()
            ],
        },
    }


def _variant_from_doc(doc: Mapping[str, Any]) -> Variant:
    o = doc.get("override") or {}
    slots = tuple(
        SlotOverride(
            slot=s["slot"],
            strategies=tuple(s["strategies"]) if s.get("strategies") is not None else None,
            weights=(
                {w["strategy"]: float(w["weight"]) for w in s["weights"]}
                if s.get("weights") is not None
                else None
            ),
            params=dict(s.get("params") or {}),
            limit=s.get("limit"),
            enabled=bool(s.get("enabled", True)),
        )
        for s in o.get("slots", ())
    )
    coupons = o.get("coupon_strategies")
    promos = o.get("promotions")
    return Variant(
        name=doc["name"],
        weight=float(doc["weight"]),
        control=bool(doc.get("control", False)),
        override=VariantOverride(
            personalization=bool(o.get("personalization", True)),
            slots=slots,
            coupon_strategies=tuple(coupons) if coupons is not None else None,
            promotions=tuple(promos) if promos is not None else None,
            strategy_params={
                p["strategy"]: dict(p["params"]) for p in o.get("strategy_params", ())
            },
        ),
    )


# -- validation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownStrategies:
    """Strategy names the plugin host has loaded; ``None`` for a kind skips that check.

    The GraphQL layer reads it from ``runtime.components[KNOWN_STRATEGIES]`` when present.
    """

    recommenders: frozenset[str] | None = None
    coupon_strategies: frozenset[str] | None = None
    promotions: frozenset[str] | None = None

    def all_names(self) -> frozenset[str] | None:
        kinds = (self.recommenders, self.coupon_strategies, self.promotions)
        if any(k is None for k in kinds):
            return None
        return frozenset().union(*(k for k in kinds if k is not None))


KNOWN_STRATEGIES = "known_strategies"


def _fail(message: str) -> ExperimentError:
    return ExperimentError(message, ErrorCode.BAD_INPUT)


def _label(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _LABEL.match(value):
        raise _fail(
            f"{where} must be 1-64 characters of letters, digits, '_', '.', ':' or '-' "
            f"(starting with a letter or digit), got {value!r}"
        )
    return value


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise _fail(f"{where} must be a list of strategy names")
    out = tuple(_label(v, f"{where}[{i}]") for i, v in enumerate(value))
    if len(set(out)) != len(out):
        raise _fail(f"{where} names a strategy twice")
    return out


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(f"{where} must be a finite number, got {value!r}")
    return float(value)


def _params(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(f"{where} must be an object of parameter names to values")

    def check(v: Any, path: str, depth: int) -> None:
        if depth > 5:
            raise _fail(f"{path} is nested too deeply (at most 5 levels)")
        if isinstance(v, Mapping):
            for k, item in v.items():
                if not isinstance(k, str) or not _PARAM_KEY.match(k):
                    raise _fail(f"{path}: {k!r} is not a valid parameter name")
                check(item, f"{path}.{k}", depth + 1)
        elif isinstance(v, list):
            for i, item in enumerate(v):
                check(item, f"{path}[{i}]", depth + 1)
        elif isinstance(v, float) and not math.isfinite(v):
            raise _fail(f"{path} must be a finite number")
        elif v is not None and not isinstance(v, str | int | float | bool):
            raise _fail(f"{path} has a value of unsupported type {type(v).__name__}")

    check(value, where, 0)
    if len(json.dumps(value)) > _MAX_PARAMS_JSON:
        raise _fail(f"{where} is larger than {_MAX_PARAMS_JSON} characters of JSON")
    return dict(value)


def _require_known(
    names: Iterable[str], known: frozenset[str] | None, kind: str, where: str
) -> None:
    if known is None:
        return
    unknown = sorted(set(names) - known)
    if unknown:
        listing = ", ".join(sorted(known)) or "none"
        raise _fail(f"{where}: unknown {kind} {', '.join(map(repr, unknown))} (known: {listing})")


def _slot_override(raw: Any, where: str, known: KnownStrategies | None) -> SlotOverride:
    if not isinstance(raw, Mapping):
        raise _fail(f"{where} must be an object")
    slot = _label(raw.get("slot"), f"{where}.slot")
    strategies = None
    if raw.get("strategies") is not None:
        strategies = _names(raw["strategies"], f"{where}.strategies")
        if not strategies:
            raise _fail(f"{where}.strategies must name at least one strategy (or use enabled)")
        _require_known(strategies, (known.recommenders if known else None), "recommender", where)
    weights = None
    if raw.get("weights") is not None:
        given = raw["weights"]
        if not isinstance(given, Mapping):
            raise _fail(f"{where}.weights must map strategy names to weights")
        weights = {}
        for name, w in given.items():
            _label(name, f"{where}.weights key")
            value = _number(w, f"{where}.weights[{name!r}]")
            if value < 0:
                raise _fail(f"{where}.weights[{name!r}] must not be negative, got {value}")
            weights[name] = value
        if weights and sum(weights.values()) <= 0:
            raise _fail(f"{where}.weights must not all be zero")
        _require_known(weights, (known.recommenders if known else None), "recommender", where)
        if strategies is not None and (extra := sorted(set(weights) - set(strategies))):
            raise _fail(f"{where}.weights names {', '.join(extra)}, not in the slot's strategies")
    limit = raw.get("limit")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SLOT_LIMIT
    ):
        raise _fail(f"{where}.limit must be a whole number from 1 to {MAX_SLOT_LIMIT}")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise _fail(f"{where}.enabled must be true or false")
    return SlotOverride(
        slot=slot,
        strategies=strategies,
        weights=weights,
        params=_params(raw.get("params"), f"{where}.params"),
        limit=limit,
        enabled=enabled,
    )


def _variant(raw: Any, where: str, known: KnownStrategies | None) -> Variant:
    if not isinstance(raw, Mapping):
        raise _fail(f"{where} must be an object")
    name = _label(raw.get("name"), f"{where}.name")
    weight = _number(raw.get("weight"), f"{where}.weight")
    if weight <= 0:
        raise _fail(f"{where}.weight must be positive, got {weight:g}")
    control = raw.get("control", False)
    if not isinstance(control, bool):
        raise _fail(f"{where}.control must be true or false")
    personalization = raw.get("personalization", True)
    if not isinstance(personalization, bool):
        raise _fail(f"{where}.personalization must be true or false")
    slots = tuple(
        _slot_override(s, f"{where}.slots[{i}]", known)
        for i, s in enumerate(raw.get("slots") or ())
    )
    seen: set[str] = set()
    for s in slots:
        if s.slot in seen:
            raise _fail(f"{where}.slots overrides slot {s.slot!r} twice")
        seen.add(s.slot)
    coupons = None
    if raw.get("coupon_strategies") is not None:
        coupons = _names(raw["coupon_strategies"], f"{where}.coupon_strategies")
        _require_known(
            coupons, (known.coupon_strategies if known else None), "coupon strategy", where
        )
    promotions = None
    if raw.get("promotions") is not None:
        promotions = _names(raw["promotions"], f"{where}.promotions")
        _require_known(promotions, (known.promotions if known else None), "promotion", where)
    strategy_params: dict[str, dict[str, Any]] = {}
    given = raw.get("strategy_params") or {}
    if not isinstance(given, Mapping):
        raise _fail(f"{where}.strategy_params must map strategy names to parameters")
    for sname, p in given.items():
        _label(sname, f"{where}.strategy_params key")
        strategy_params[sname] = _params(p, f"{where}.strategy_params[{sname!r}]")
    _require_known(strategy_params, (known.all_names() if known else None), "strategy", where)
    return Variant(
        name=name,
        weight=weight,
        control=control,
        override=VariantOverride(
            personalization=personalization,
            slots=slots,
            coupon_strategies=coupons,
            promotions=promotions,
            strategy_params=strategy_params,
        ),
    )


def _area(value: Any, where: str) -> str:
    if value == ALL or value in (COUPONS, PROMOTIONS):
        return str(value)
    if isinstance(value, str):
        for prefix in (SLOT_PREFIX, STRATEGY_PREFIX):
            if value.startswith(prefix):
                _label(value[len(prefix) :], where)
                return value
    raise _fail(
        f"{where} must be 'slot:<name>', 'strategy:<name>', 'coupons', 'promotions' or '*', "
        f"got {value!r}"
    )


def parse_experiment(
    raw: Mapping[str, Any], *, now: datetime, known: KnownStrategies | None = None
) -> Experiment:
    """Validate an experiment definition and return it as a draft with a fresh id.

    ``raw`` keys: ``name``, ``traffic`` (0 < share <= 1), ``variants`` (2..20, names unique,
    weights positive, exactly one ``control: true``; each with the `VariantOverride` fields
    ``personalization``, ``slots`` [{slot, strategies, weights, params, limit, enabled}],
    ``coupon_strategies``, ``promotions``, ``strategy_params``), and optionally ``description``,
    ``layer``, ``areas`` (extra areas beyond those the overrides imply), ``currency`` (of
    revenue in its report), ``ends_at``. With ``known``, unknown strategy names are refused.
    Raises `ExperimentError` naming the first problem.
    """
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 100:
        raise _fail("name must be 1-100 characters")
    name = name.strip()
    description = raw.get("description") or ""
    if not isinstance(description, str) or len(description) > 2000:
        raise _fail("description must be text of at most 2000 characters")
    traffic = _number(raw.get("traffic"), "traffic")
    if not 0 < traffic <= 1:
        raise _fail(f"traffic must be above 0 and at most 1 (a share of shoppers), got {traffic:g}")
    if round(traffic * BUCKETS) < 1:
        raise _fail(f"traffic must be at least {1 / BUCKETS:g} (one bucket of {BUCKETS})")
    layer = _label(raw.get("layer") or DEFAULT_LAYER, "layer")
    currency = raw.get("currency") or "EUR"
    if not isinstance(currency, str) or not is_currency(currency):
        raise _fail(f"currency must be an ISO 4217 code, got {currency!r}")
    raw_variants = raw.get("variants")
    if not isinstance(raw_variants, list | tuple) or not 2 <= len(raw_variants) <= MAX_VARIANTS:
        raise _fail(f"variants must list 2 to {MAX_VARIANTS} variants (a control and at least one)")
    variants = tuple(_variant(v, f"variants[{i}]", known) for i, v in enumerate(raw_variants))
    names = [v.name for v in variants]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise _fail(f"variant names must be unique: {', '.join(dupes)} given twice")
    controls = [v.name for v in variants if v.control]
    if len(controls) != 1:
        raise _fail(
            f"exactly one variant must be the control (control: true); found {len(controls)}"
        )
    areas: set[str] = set()
    for v in variants:
        areas |= v.override.areas()
    areas.update(_area(a, f"areas[{i}]") for i, a in enumerate(raw.get("areas") or ()))
    ends_at = raw.get("ends_at")
    if ends_at is not None and (not isinstance(ends_at, datetime) or ends_at.tzinfo is None):
        raise _fail("ends_at must be a timezone-aware date and time")
    if ends_at is not None and ends_at <= now:
        raise _fail("ends_at must be in the future")
    return Experiment(
        id="exp_" + secrets.token_hex(6),
        name=name,
        status=ExperimentStatus.DRAFT,
        traffic=traffic,
        variants=variants,
        layer=layer,
        areas=frozenset(areas),
        description=description,
        currency=currency,
        created_at=now,
        updated_at=now,
        ends_at=ends_at,
    )


def areas_overlap(a: str, b: str) -> bool:
    """Whether two changed areas can interact. ``*`` (no personalization) overlaps
    everything; a strategy's parameters may affect any slot, offer or promotion that uses the
    strategy, so ``strategy:X`` overlaps everything except another strategy's parameters."""
    if ALL in (a, b) or a == b:
        return True
    a_strategy, b_strategy = a.startswith(STRATEGY_PREFIX), b.startswith(STRATEGY_PREFIX)
    if a_strategy and b_strategy:
        return False
    return a_strategy or b_strategy


def shared_areas(a: Iterable[str], b: Iterable[str]) -> list[str]:
    bs = list(b)
    return sorted({x for x in a for y in bs if areas_overlap(x, y)})


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
    store: Store, statuses: Sequence[ExperimentStatus] | None = None, *, limit: int = 0
) -> list[Experiment]:
    """Experiments, newest first, optionally only those in ``statuses``; at most ``limit``
    (0: all)."""
    query: dict[str, Any] = {}
    if statuses:
        query["status"] = {"$in": [s.value for s in statuses]}
    cursor = store.collection(EXPERIMENTS).find(query).sort([("created_at", -1), ("_id", 1)])
    docs = await cursor.limit(limit).to_list(None)
    return [Experiment.from_doc(d) for d in docs]


_HOLDS_RANGE = [ExperimentStatus.RUNNING.value, ExperimentStatus.PAUSED.value]


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
                {"status": {"$in": _HOLDS_RANGE}, "_id": {"$ne": exp.id}}, session=session
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
    Register one per process as ``runtime.components["experiments"]``.
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

    @property
    def active(self) -> list[Experiment]:
        return list(self._snapshot.active.values())

    def override_count(self) -> int:
        return len(self._overrides)

    def remember(self, experiment_id: str, shopper_key: str, variant: str) -> None:
        """Hold an inherited assignment now (other instances pick it up on their refresh)."""
        if experiment_id in self._snapshot.active:
            self._overrides[(experiment_id, shopper_key)] = variant

    # -- loading -------------------------------------------------------------------------

    async def refresh(self) -> None:
        docs = (
            await self.store.collection(EXPERIMENTS)
            .find({"status": {"$in": _HOLDS_RANGE}})
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


# -- applying a variant to the storefront --------------------------------------------------


@dataclass(frozen=True)
class StorefrontOverrides:
    """The storefront configuration after a request's assignments are applied.

    ``strategy_params`` goes into `RequestContext.overrides`; ``personalized=False`` means the
    request must be served like one without personalization consent. ``slot_assignments``
    names, per slot, the assignment that changed it (its experiment and variant are stored on
    the slot's recommendation document and its exposure); ``assignments`` are what the
    response reports as the experiments and variants that served it.
    """

    slots: tuple[Slot, ...]
    coupon_strategies: tuple[str, ...]
    promotions: tuple[str, ...]
    personalized: bool
    strategy_params: Mapping[str, Mapping[str, Any]]
    slot_assignments: Mapping[str, Assignment]
    assignments: tuple[Assignment, ...]


def _apply_slot(slot: Slot, change: SlotOverride) -> Slot:
    strategies = change.strategies if change.strategies is not None else slot.strategies
    if change.weights is not None:
        weights: Mapping[str, float] = dict(change.weights)
    else:
        weights = {k: w for k, w in slot.weights.items() if k in strategies}
    return replace(
        slot,
        strategies=tuple(strategies),
        weights=weights,
        params={**slot.params, **change.params},
        limit=change.limit if change.limit is not None else slot.limit,
    )


def assignment_for_slot(
    assignments: Sequence[Assignment], slot: str, strategies: Iterable[str] = ()
) -> Assignment | None:
    """The assignment whose experiment changes ``slot`` (at most one, by the start rule)."""
    names = tuple(strategies)
    return next((a for a in assignments if a.changes_slot(slot, names)), None)


def apply_overrides(
    slots: Sequence[Slot],
    coupon_strategies: Sequence[str],
    promotions: Sequence[str],
    assignments: Sequence[Assignment],
) -> StorefrontOverrides:
    """Apply each assignment's variant to the page's default configuration.

    Slot overrides replace strategies, weights and limit and merge params; ``enabled=False``
    drops the slot. Coupon strategy and promotion lists replace the active sets. Overrides for
    slots not on the page are ignored. Experiments never change the same area (the start
    rule), so the order of ``assignments`` does not matter.
    """
    by_slot: dict[str, SlotOverride] = {}
    coupons = tuple(coupon_strategies)
    promos = tuple(promotions)
    personalized = True
    params: dict[str, Mapping[str, Any]] = {}
    for a in assignments:
        o = a.override
        for s in o.slots:
            by_slot.setdefault(s.slot, s)
        if o.coupon_strategies is not None:
            coupons = o.coupon_strategies
        if o.promotions is not None:
            promos = o.promotions
        personalized = personalized and o.personalization
        for name, p in o.strategy_params.items():
            params[name] = {**params.get(name, {}), **p}
    out_slots: list[Slot] = []
    owners: dict[str, Assignment] = {}
    for slot in slots:
        change = by_slot.get(slot.name)
        if change is not None and not change.enabled:
            continue
        new = _apply_slot(slot, change) if change is not None else slot
        out_slots.append(new)
        owner = assignment_for_slot(assignments, new.name, new.strategies)
        if owner is not None:
            owners[new.name] = owner
    return StorefrontOverrides(
        slots=tuple(out_slots),
        coupon_strategies=coupons,
        promotions=promos,
        personalized=personalized,
        strategy_params=params,
        slot_assignments=owners,
        assignments=tuple(assignments),
    )


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
    await _bulk_upsert(store.collection(EXPOSURES), docs)
    return ExposureResult(sampled=True, exposures_written=len(docs), first_exposures=first)


class ExposureRecorder:
    """`record_exposure` with the service's sample rate and a per-process `FirstExposures`.
    Register one per process as ``runtime.components["exposures"]``."""

    def __init__(self, store: Store, *, sample_rate: float, first_exposure_cache: int = 100_000):
        if not 0 < sample_rate <= 1:
            raise ValueError(f"sample_rate must be above 0 and at most 1, got {sample_rate!r}")
        self.store = store
        self.sample_rate = sample_rate
        self.seen = FirstExposures(first_exposure_cache)

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
        )


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
    """Called by `identify(sessionId, userId)`: keep the shopper's variants across login.

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
            .find({"status": {"$in": _HOLDS_RANGE}})
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


# -- privacy -------------------------------------------------------------------------------


async def export_user(store: Store, user_id: str) -> dict[str, list[dict[str, Any]]]:
    """The shopper's assignments and exposures (for a data-subject export)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, fld in USER_DATA_FIELDS.items():
        docs = await store.collection(name).find({fld: user_id}).to_list(None)
        out[name] = [{k: v for k, v in d.items() if k != "_id" or name == EXPOSURES} for d in docs]
    return out


async def erase_user(store: Store, user_id: str) -> dict[str, int]:
    """Delete the shopper's assignments and exposures; returns the count per collection."""
    counts: dict[str, int] = {}
    for name, fld in USER_DATA_FIELDS.items():
        result = await store.collection(name).delete_many({fld: user_id})
        counts[name] = int(result.deleted_count)
    return counts


# -- wiring --------------------------------------------------------------------------------

REGISTRY_COMPONENT = "experiments"
RECORDER_COMPONENT = "exposures"


async def start_experiments(runtime: Runtime) -> ExperimentRegistry:
    """Build this process's `ExperimentRegistry` (loaded, then polling every
    ``SHOPFRONT_EXPERIMENT_REFRESH_SECONDS``) and `ExposureRecorder` (at
    ``SHOPFRONT_EXPOSURE_SAMPLE_RATE``) and register them as
    ``runtime.components["experiments"]`` and ``["exposures"]``. Call it from the app's
    lifespan after the store opens; `stop_experiments` on shutdown."""
    settings = runtime.settings
    registry = ExperimentRegistry(
        runtime.store, refresh_seconds=settings.experiment_refresh_seconds
    )
    await registry.start()
    runtime.components[REGISTRY_COMPONENT] = registry
    runtime.components[RECORDER_COMPONENT] = ExposureRecorder(
        runtime.store, sample_rate=settings.exposure_sample_rate
    )
    return registry


async def stop_experiments(runtime: Runtime) -> None:
    registry = runtime.components.pop(REGISTRY_COMPONENT, None)
    runtime.components.pop(RECORDER_COMPONENT, None)
    if isinstance(registry, ExperimentRegistry):
        await registry.close()
