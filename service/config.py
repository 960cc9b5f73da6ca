"""Settings: every knob is a ``SHOPFRONT_*`` environment variable with a typed default.

`Settings.from_env` validates everything at start-up and raises `ConfigError` naming the
bad variable, so a typo stops the service before it serves anything.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

PREFIX = "SHOPFRONT_"


class ConfigError(ValueError):
    """A setting has a value the service cannot run with."""


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
        default=Path(".shopfront"),
        metadata=_meta("Local data folder: embedded database files and demo keys."),
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
    embedded_start_timeout_s: float = field(
        default=30.0,
        metadata=_meta("How long to wait for the embedded database to answer ping.", min=1),
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

    @property
    def introspection_enabled(self) -> bool:
        return bool(self.introspection)

    @property
    def embedded(self) -> bool:
        return not self.mongodb_uri


def env_name(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("env", PREFIX + f.name.upper()))


def setting_names() -> list[str]:
    """Every environment variable Shopfront reads."""
    return [env_name(f) for f in dataclasses.fields(Settings)]


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, description) rows for the README's settings table."""
    rows = []
    for f in dataclasses.fields(Settings):
        default = "" if f.default is None else str(f.default)
        rows.append((env_name(f), default, str(f.metadata.get("doc", ""))))
    return rows


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
