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

import json
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shopfront.platform.money import is_currency

if TYPE_CHECKING:
    pass


EXPERIMENTS = "experiments"
ASSIGNMENTS = "assignments"
EXPOSURES = "exposures"
LOCKS = "experiment_locks"


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

    The GraphQL layer reads it from ``Runtime.known_strategies`` when set.
    """

    recommenders: frozenset[str] | None = None
    coupon_strategies: frozenset[str] | None = None
    promotions: frozenset[str] | None = None

    def all_names(self) -> frozenset[str] | None:
        kinds = (self.recommenders, self.coupon_strategies, self.promotions)
        if any(k is None for k in kinds):
            return None
        return frozenset().union(*(k for k in kinds if k is not None))


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
