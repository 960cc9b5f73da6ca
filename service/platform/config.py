"""Settings: every knob is a ``SHOPFRONT_*`` environment variable with a typed default.

`Settings.from_env` validates everything at start-up and raises `ConfigError` naming the
bad variable, so a typo stops the service before it serves anything.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from shopfront.platform.money import Money, is_currency
from shopfront.platform.vocabulary import EVENT_TYPES

PREFIX = "SHOPFRONT_"


class ConfigError(ValueError):
    """A setting has a value the service cannot run with."""


DEFAULT_EVENT_WEIGHTS = (
    "view=1,click=2,add_to_cart=4,purchase=8,rating=3,review=3,search=0.5,"
    "remove_from_cart=-1,not_interested=-5,impression=0"
)


def _weight_pairs(text: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, raw = part.partition("=")
        name = name.strip().lower()
        if not sep:
            raise ValueError(f"{part!r} is not TYPE=WEIGHT")
        if name not in EVENT_TYPES:
            raise ValueError(f"{name!r} is not an event type (one of {', '.join(EVENT_TYPES)})")
        if name in weights:
            raise ValueError(f"{name!r} is given twice")
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"{part!r}: the weight is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{part!r}: the weight must be a finite number")
        weights[name] = value
    return weights


_DEFAULT_WEIGHT_MAP = _weight_pairs(DEFAULT_EVENT_WEIGHTS)


@cache
def parse_event_weights(text: str) -> Mapping[str, float]:
    """``"view=1,purchase=8,..."`` as a read-only weight per event type.

    Types left out keep their default weight; an unknown type, a repeated type or a value that
    is not a finite number raises `ValueError` naming the offending part.
    """
    return types.MappingProxyType({**_DEFAULT_WEIGHT_MAP, **_weight_pairs(text)})


def _meta(doc: str, **extra: Any) -> dict[str, Any]:
    return {"doc": doc, **extra}


@dataclass(frozen=True)
class Settings:
    """All runtime settings. Field ``foo_bar`` is read from ``SHOPFRONT_FOO_BAR``."""

    mongodb_uri: str = field(
        default="",
        metadata=_meta("MongoDB connection string; empty starts the embedded server."),
    )
    mongodb_database: str = field(default="shopfront", metadata=_meta("Database name."))
    mongo_driver: Literal["motor", "pymongo"] = field(
        default="motor",
        metadata=_meta("Async driver: `motor` or PyMongo's own `pymongo` AsyncMongoClient."),
    )
    mongo_server_selection_timeout_ms: int = field(
        default=2000,
        metadata=_meta("How long to wait for a reachable server before failing.", min=1),
    )
    mongo_operation_timeout_ms: int = field(
        default=5000,
        metadata=_meta("Deadline for a single database operation.", min=1),
    )
    data_dir: Path = field(
        default_factory=lambda: default_data_dir(),
        metadata=_meta(
            "Local data folder: embedded database files and demo keys (every command takes "
            "`--data-dir` too).",
            shown_default="`.shopfront/` of the source checkout, else `~/.local/share/shopfront`",
        ),
    )
    host: str = field(default="127.0.0.1", metadata=_meta("Address `shopfront serve` binds."))
    port: int = field(default=8000, metadata=_meta("Port `shopfront serve` binds.", min=0))
    environment: Literal["production", "development"] = field(
        default="production",
        metadata=_meta("`production` masks internal errors; `development` shows them."),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = field(
        default="INFO", metadata=_meta("Log level.")
    )
    introspection: bool | None = field(
        default=None,
        metadata=_meta("Allow GraphQL introspection (default: off, on with `--demo`)."),
    )
    max_page_size: int = field(
        default=100, metadata=_meta("Largest `first` a list query accepts.", min=1)
    )
    max_upsert_batch: int = field(
        default=1000, metadata=_meta("Most products one `upsertProducts` call takes.", min=1)
    )
    config_file: Path | None = field(
        default=None,
        metadata=_meta("Optional TOML file with plugin configuration.", env="SHOPFRONT_CONFIG"),
    )
    demo_shoppers: int = field(
        default=300,
        metadata=_meta("How many demo shoppers (with histories) `--demo` seeds.", min=0),
    )
    embedded_start_timeout_s: float = field(
        default=30.0,
        metadata=_meta("How long to wait for the embedded database to answer ping.", min=1),
    )
    # -- experiments and attribution (shopfront.experiments.definitions,
    # shopfront.experiments.attribution) ------------
    attribution_window_hours: int = field(
        default=24,
        metadata=_meta(
            "A purchase without a recommendationId is credited to the last recommendation the "
            "same shopper clicked for that product within this many hours.",
            min=1,
        ),
    )
    exposure_sample_rate: float = field(
        default=1.0,
        metadata=_meta(
            "Share (0 < rate <= 1) of served storefront requests whose slot and offer "
            "impressions are logged; counts are scaled back up by 1/rate.",
            min=0.0001,
        ),
    )
    experiment_refresh_seconds: float = field(
        default=5.0,
        metadata=_meta(
            "How often each instance reloads running experiments and inherited assignments.",
            min=0.1,
        ),
    )
    experiment_min_exposures: int = field(
        default=200,
        metadata=_meta(
            "Experiment reports warn when a variant has fewer exposed shoppers than this.", min=1
        ),
    )
    report_currency: str = field(
        default="EUR",
        metadata=_meta("Currency revenue is reported in when a report does not name one."),
    )
    # -- GraphQL abuse limits (schema/limits.py, service/app.py) ------------------------------
    max_query_depth: int = field(
        default=10,
        metadata=_meta("Deepest field nesting an operation may have (`{ a { b } }` is 2).", min=1),
    )
    max_query_tokens: int = field(
        default=2000, metadata=_meta("Most lexical tokens a GraphQL document may have.", min=1)
    )
    max_aliases: int = field(
        default=15,
        metadata=_meta("Most aliased fields per operation, fragments expanded.", min=0),
    )
    max_query_cost: int = field(
        default=1000,
        metadata=_meta(
            "Highest estimated cost per operation: each object field costs 1, a field with a "
            "`first`/`limit` argument multiplies its selection by it.",
            min=1,
        ),
    )
    max_body_bytes: int = field(
        default=256 * 1024,
        metadata=_meta(
            "Largest GraphQL request body accepted (bytes); larger is HTTP 413.", min=1024
        ),
    )
    max_operations_per_batch: int = field(
        default=10,
        metadata=_meta(
            "Most operations in one batched request (a JSON array); 1 turns batching off.", min=1
        ),
    )
    field_suggestions: bool | None = field(
        default=None,
        metadata=_meta(
            "Keep 'Did you mean ...' hints in GraphQL errors (default: only when introspection "
            "is on, since they reveal the schema)."
        ),
    )
    # -- rate limits (service/ratelimit.py); a rate of 0 switches that bucket off ------------
    rate_limit_enabled: bool = field(
        default=True, metadata=_meta("Apply the per-key and per-address token buckets.")
    )
    rate_limit_storefront_per_s: float = field(
        default=500.0,
        metadata=_meta("Requests per second one storefront key may make (all shoppers).", min=0),
    )
    rate_limit_storefront_burst: int = field(
        default=1000, metadata=_meta("Burst size of a storefront key's bucket.", min=1)
    )
    rate_limit_merchant_per_s: float = field(
        default=100.0, metadata=_meta("Requests per second one merchant key may make.", min=0)
    )
    rate_limit_merchant_burst: int = field(
        default=200, metadata=_meta("Burst size of a merchant key's bucket.", min=1)
    )
    rate_limit_address_per_s: float = field(
        default=100.0,
        metadata=_meta("Requests per second one client address may make, any key.", min=0),
    )
    rate_limit_address_burst: int = field(
        default=200, metadata=_meta("Burst size of a client address's bucket.", min=1)
    )
    # -- health, shutdown, overload, logs (service/health.py, service/admission.py) ----------
    health_check_interval_s: float = field(
        default=0.5,
        metadata=_meta("How often the readiness monitor pings the database.", min=0.05),
    )
    health_check_timeout_s: float = field(
        default=1.0,
        metadata=_meta(
            "How long a readiness ping may take before the database counts as down.", min=0.05
        ),
    )
    key_cache_max_age_s: float = field(
        default=300.0,
        metadata=_meta(
            "While the database is unreachable, API keys verified this recently still "
            "authenticate (0: never).",
            min=0,
        ),
    )
    shutdown_drain_s: float = field(
        default=10.0,
        metadata=_meta(
            "On SIGTERM, how long in-flight requests may take to finish before they are cut.",
            min=0,
        ),
    )
    ingest_max_in_flight: int = field(
        default=10_000,
        metadata=_meta(
            "Most events being ingested at once; beyond it ingestion answers HTTP 503 "
            "OVERLOADED with Retry-After.",
            min=1,
        ),
    )
    overload_retry_after_s: int = field(
        default=1, metadata=_meta("Retry-After (seconds) sent with an OVERLOADED answer.", min=1)
    )
    log_format: Literal["json", "text"] = field(
        default="json", metadata=_meta("`shopfront serve` log lines: `json` or `text`.")
    )
    metrics_enabled: bool = field(
        default=True, metadata=_meta("Serve Prometheus metrics at /metrics.")
    )
    # -- plugins and the storefront ------------------------------------------------------
    plugins_strict: bool = field(
        default=False,
        metadata=_meta("Stop start-up when a merchant plugin fails to load (default: skip it)."),
    )
    plugins_allow: tuple[str, ...] = field(
        default=(),
        metadata=_meta("Comma list of plugin names; when set, only these plugins load."),
    )
    plugins_deny: tuple[str, ...] = field(
        default=(), metadata=_meta("Comma list of plugin names that never load.")
    )
    plugins_entry_points: bool = field(
        default=True,
        metadata=_meta("Discover merchant plugins through the `shopfront` entry-point group."),
    )
    strategy_timeout_ms: int = field(
        default=150,
        metadata=_meta("Deadline of one strategy call (per strategy: `timeout_ms`).", min=1),
    )
    breaker_failures: int = field(
        default=5,
        metadata=_meta("Consecutive failures that open a strategy's circuit breaker.", min=1),
    )
    breaker_cooldown_ms: int = field(
        default=30_000,
        metadata=_meta("How long an open breaker waits before one probe call.", min=0),
    )
    plugin_hook_timeout_ms: int = field(
        default=1000,
        metadata=_meta("Deadline of one `on_event` / `on_user_erased` plugin call.", min=1),
    )
    plugin_startup_timeout_ms: int = field(
        default=30_000,
        metadata=_meta("Deadline of a strategy factory or a plugin's `startup` hook.", min=1),
    )
    default_currency: str = field(
        default="EUR", metadata=_meta("Currency of a storefront request that names none.")
    )
    storefront_budget_ms: int = field(
        default=2000,
        metadata=_meta(
            "Time budget of one storefront answer; past it (a slow or failing database) the "
            "last known good non-personalized slots are served, flagged in `degraded`.",
            min=50,
        ),
    )
    recommendation_ttl_days: int = field(
        default=30,
        metadata=_meta("How long served recommendations are kept for attribution.", min=1),
    )
    event_retention_days: int = field(
        default=365,
        metadata=_meta(
            "Days behaviour events are kept (TTL index on the event time); older events are "
            "rejected on arrival.",
            min=1,
        ),
    )
    affinity_half_life_days: float = field(
        default=30.0,
        metadata=_meta(
            "Half-life of profile affinities: an event's weight halves every this many days.",
            min=0.01,
        ),
    )
    event_weights: str = field(
        default=DEFAULT_EVENT_WEIGHTS,
        metadata=_meta(
            "Affinity weight per event type, `type=weight,...` (types left out keep their "
            "default; rating and review weights scale with the stars, 3 stars counting 0)."
        ),
    )
    preference_weight: float = field(
        default=5.0,
        metadata=_meta(
            "Affinity a stated favourite category or brand adds (stated preferences do not decay).",
            min=0.0,
        ),
    )
    recently_viewed_max: int = field(
        default=50, metadata=_meta("Products kept in a profile's recently viewed list.", min=1)
    )
    max_events_per_call: int = field(
        default=500, metadata=_meta("Most events one `trackEvents` call takes.", min=1)
    )
    personalization_requires_consent: bool = field(
        default=False,
        metadata=_meta(
            "Treat shoppers as not consenting to personalization until `setConsent` says "
            "they do (default: personalized unless they opted out)."
        ),
    )
    # -- promotions and coupons --
    shipping_fee: tuple[str, ...] = field(
        default=(),
        metadata=_meta(
            "Flat shipping fee per currency in minor units, e.g. `EUR=495,USD=595` (a currency "
            "not listed ships free; `--demo` uses `EUR=495`); free-shipping promotions "
            "discount it."
        ),
    )
    nudge_closeness_percent: int = field(
        default=20,
        metadata=_meta(
            "Nudge when the missing spend is at most this percent of a promotion's threshold.",
            min=0,
        ),
    )
    nudge_closeness_amount: tuple[str, ...] = field(
        default=(),
        metadata=_meta(
            "Also nudge when the missing spend is at most this amount, per currency in minor "
            "units, e.g. `EUR=1500`."
        ),
    )
    nudge_max_missing_items: int = field(
        default=1,
        metadata=_meta(
            "Nudge when at most this many items are missing (buy X get Y, bundles).", min=0
        ),
    )
    nudge_suggestions: int = field(
        default=3, metadata=_meta("Products suggested per nudge.", min=0)
    )
    promotions_refresh_ms: int = field(
        default=2000,
        metadata=_meta(
            "How often an instance checks for changed promotions and campaigns (changes made "
            "through this instance apply at once).",
            min=0,
        ),
    )
    max_coupon_codes: int = field(
        default=5, metadata=_meta("Most coupon codes one cart may enter.", min=1)
    )
    max_generated_codes: int = field(
        default=100_000,
        metadata=_meta("Most unique codes one `generateCouponCodes` call creates.", min=1),
    )
    coupon_code_length: int = field(
        default=12,
        metadata=_meta(
            "Characters of a generated coupon code (31-letter alphabet: 12 give ~59 bits).",
            min=8,
        ),
    )
    idempotency_ttl_days: int = field(
        default=30,
        metadata=_meta("How long redeemCoupon remembers an idempotency key's result.", min=1),
    )
    model_poll_interval_s: float = field(
        default=30.0,
        metadata=_meta(
            "How often each instance checks for a newly activated model version.", min=0.1
        ),
    )
    training_interval_minutes: float = field(
        default=0.0,
        metadata=_meta(
            "Retrain in the service every N minutes (0 = off: use `shopfront train`).", min=0
        ),
    )
    training_window_days: int = field(
        default=180, metadata=_meta("Days of events the models are trained on.", min=1)
    )
    batch_read_preference: Literal[
        "primary", "primaryPreferred", "secondary", "secondaryPreferred", "nearest"
    ] = field(
        default="secondaryPreferred",
        metadata=_meta(
            "Where batch jobs (training, evaluation, reports) read from: a secondary keeps their "
            "scans off the primary that serves shoppers (a single node serves them itself)."
        ),
    )
    training_deadline_s: float = field(
        default=3600.0,
        metadata=_meta(
            "Deadline of one training job, reads included (its own: not the request timeout).",
            min=1,
        ),
    )
    training_tune: bool = field(
        default=True,
        metadata=_meta(
            "Scheduled training also chooses slot strategies and blend weights on a time-based "
            "holdout (fits the models twice)."
        ),
    )
    training_lock_lease_s: float = field(
        default=900.0,
        metadata=_meta(
            "How long a training instance holds the training lock between renewals.", min=1
        ),
    )
    model_keep_versions: int = field(
        default=5, metadata=_meta("Model versions kept (the active one is never removed).", min=1)
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read settings from ``environ`` (default ``os.environ``); ``overrides`` win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            name = env_name(f)
            if f.name in overrides:
                continue
            raw = env.get(name)
            if raw is None:
                continue
            values[f.name] = _parse(name, raw, hints[f.name])
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            minimum = f.metadata.get("min")
            if minimum is not None and value is not None and value < minimum:
                raise ConfigError(f"{env_name(f)} must be at least {minimum}, got {value!r}")
            allowed = _literal_choices(hints[f.name])
            if allowed and value not in allowed:
                raise ConfigError(
                    f"{env_name(f)} must be one of {', '.join(map(str, allowed))}; got {value!r}"
                )
        if self.mongodb_uri and not self.mongodb_uri.startswith(("mongodb://", "mongodb+srv://")):
            raise ConfigError("SHOPFRONT_MONGODB_URI must start with mongodb:// or mongodb+srv://")
        if not 0 < self.exposure_sample_rate <= 1:
            raise ConfigError(
                "SHOPFRONT_EXPOSURE_SAMPLE_RATE must be above 0 and at most 1, "
                f"got {self.exposure_sample_rate!r}"
            )

        if not is_currency(self.report_currency):
            raise ConfigError(
                f"SHOPFRONT_REPORT_CURRENCY must be an ISO 4217 code, got {self.report_currency!r}"
            )
        if not is_currency(self.default_currency):
            raise ConfigError(
                "SHOPFRONT_DEFAULT_CURRENCY must be an ISO 4217 code, "
                f"got {self.default_currency!r}"
            )
        try:
            parse_event_weights(self.event_weights)
        except ValueError as exc:
            raise ConfigError(
                f"SHOPFRONT_EVENT_WEIGHTS={self.event_weights!r} is invalid: {exc}"
            ) from None

        amounts_by_currency(self.shipping_fee, "SHOPFRONT_SHIPPING_FEE")
        amounts_by_currency(self.nudge_closeness_amount, "SHOPFRONT_NUDGE_CLOSENESS_AMOUNT")

    @property
    def event_weight_map(self) -> Mapping[str, float]:
        """`event_weights` parsed: the affinity weight of every event type."""
        return parse_event_weights(self.event_weights)

    @property
    def introspection_enabled(self) -> bool:
        return bool(self.introspection)

    @property
    def suggestions_enabled(self) -> bool:
        """Whether GraphQL errors may carry "Did you mean ..." hints."""
        if self.field_suggestions is None:
            return self.introspection_enabled
        return self.field_suggestions

    @property
    def embedded(self) -> bool:
        return not self.mongodb_uri


def env_name(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("env", PREFIX + f.name.upper()))


def setting_names() -> list[str]:
    """Every environment variable Shopfront reads."""
    return [env_name(f) for f in dataclasses.fields(Settings)]


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, description) rows for the README's settings table.

    The default is written as an operator would set it (``true``, ``a,b``, empty for none),
    in backticks; a computed default is described in words instead.
    """
    rows = []
    for f in dataclasses.fields(Settings):
        shown = f.metadata.get("shown_default")
        default = str(shown) if shown else _env_value(f.default)
        if default and not shown:
            default = f"`{default}`"
        rows.append((env_name(f), default, str(f.metadata.get("doc", ""))))
    return rows


def _env_value(value: Any) -> str:
    """``value`` as it would be written in the environment variable ("" for unset)."""
    if value is None or value is dataclasses.MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


PROJECT_NAME = "shopfront"
DATA_FOLDER = ".shopfront"


def source_checkout() -> Path | None:
    """The Shopfront source tree this code runs from (an editable install), if any.

    Found as the nearest folder above this file with a ``pyproject.toml`` naming the project,
    so that every command of a checkout uses the checkout's data folder from any directory.
    """
    for folder in Path(__file__).resolve().parents:
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            try:
                text = pyproject.read_text(encoding="utf-8")
            except OSError:
                return None
            return folder if f'name = "{PROJECT_NAME}"' in text else None
    return None


def user_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The per-user data folder: ``$XDG_DATA_HOME/shopfront`` (``~/.local/share/shopfront``),
    ``~/Library/Application Support/shopfront`` on macOS, ``%LOCALAPPDATA%\\shopfront``."""
    env = os.environ if environ is None else environ
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / PROJECT_NAME
    if sys.platform == "win32" and env.get("LOCALAPPDATA"):
        return Path(env["LOCALAPPDATA"]) / PROJECT_NAME
    xdg = env.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / PROJECT_NAME


def default_data_dir() -> Path:
    """Where the data lives when neither ``--data-dir`` nor SHOPFRONT_DATA_DIR says: the
    checkout's ``.shopfront/`` when running from source (``make run``), else per user."""
    checkout = source_checkout()
    return checkout / DATA_FOLDER if checkout is not None else user_data_dir()


def _literal_choices(tp: Any) -> tuple[Any, ...]:
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    return ()


def _parse(name: str, raw: str, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if raw.strip() == "":
            return None
        return _parse(name, raw, args[0])
    if origin is Literal:
        return raw.strip()
    try:
        if tp is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected one of 1/0, true/false, yes/no, on/off")
        if tp is int:
            return int(raw.strip())
        if tp is float:
            return float(raw.strip())
        if tp is Path:
            return Path(raw.strip())
        if tp is str:
            return raw
        if origin is tuple:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(
            f"{name}={raw!r} is not a valid {getattr(tp, '__name__', tp)}: {exc}"
        ) from None
    raise ConfigError(f"{name}: unsupported setting type {tp!r}")


def amounts_by_currency(values: tuple[str, ...] | list[str], setting: str) -> dict[str, Money]:
    """``("EUR=495", "USD=595")`` -> amounts by currency; a bad entry names the setting."""
    amounts: dict[str, Money] = {}
    for entry in values:
        code, sep, amount = entry.partition("=")
        currency = code.strip().upper()
        value = int(amount.strip()) if sep and amount.strip().isdigit() else -1
        if value < 0 or not is_currency(currency):
            raise ConfigError(
                f"{setting}: {entry!r} must be CURRENCY=MINOR_UNITS, e.g. EUR=495 for 4.95 EUR"
            )
        if currency in amounts:
            raise ConfigError(f"{setting}: {currency} is given twice")
        amounts[currency] = Money(value, currency)
    return amounts
