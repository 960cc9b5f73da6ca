"""Plugin configuration: the TOML file named by ``SHOPFRONT_CONFIG``, validated at start-up.

Layout::

    [plugins.example]              # a plugin's start-up config, given to its `startup` hook
    api_url = "https://..."

    [strategies.welcome_code]      # one strategy's config; keys and types come from its spec
    code = "WELCOME10"
    token = "env:WELCOME_TOKEN"    # a secret, read from the environment, hidden in `plugins`
    timeout_ms = 200               # host keys: enabled, timeout_ms, breaker_failures,
                                   #            breaker_cooldown_ms (a spec may default
                                   #            `enabled`; the others are the host's)

    [[slots.HOME]]                 # storefront slots per page type (see
    shopfront.storefront.composer)
    name = "trending"
    strategies = ["trending"]

    [shipping]                     # flat shipping per currency, in minor units
    EUR = 495

A strategy's keys are exactly its declared settings (the spec's ``config_type``, a dataclass:
types, bounds, list item types; see `shopfront.platform.config_schema`) — or, for a spec
without one, its ``default_config`` keys — plus the host keys. An unknown key, a value of the
wrong type or out of bounds is a `ConfigError` that names the plugin, the strategy, the setting
and the value. A string ``"env:VAR"`` is read from the environment variable ``VAR`` (and
converted to the setting's type), so secrets never sit in the file; such values are hidden in
the merchant `plugins` query, as are the keys a spec lists in ``secrets`` and settings declared
``secret=True``.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopfront.platform.config import ConfigError, Settings
from shopfront.platform.config_schema import (
    SettingError,
    check_settings,
    describe_settings,
    field_type,
    kind_of,
    parse_settings,
    plain,
)

HIDDEN = "***"
KNOWN_SECTIONS: tuple[str, ...] = ("plugins", "strategies", "slots", "shipping")

# Keys the host reads from every strategy section; a spec may not use them itself.
HOST_KEYS: dict[str, type] = {
    "enabled": bool,
    "timeout_ms": int,
    "breaker_failures": int,
    "breaker_cooldown_ms": int,
}
_ENV_REF = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True)
class ConfigFile:
    """The parsed file, each section a plain mapping (empty when absent)."""

    source: str
    plugins: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    strategies: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    slots: Mapping[str, Any] = field(default_factory=dict)
    shipping: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StrategyConfig:
    """One strategy's validated configuration.

    ``values`` is what the factory receives (defaults overlaid with the file, secrets
    resolved); ``shown`` is the same with secrets replaced by ``"***"``.
    """

    values: Mapping[str, Any]
    shown: Mapping[str, Any]
    enabled: bool
    timeout_ms: int
    breaker_failures: int
    breaker_cooldown_ms: int
    declared: Any = None  # the config_type instance (None without one, or while disabled)


def load_config_file(path: Path | None) -> ConfigFile:
    """Read and shape-check the file at ``path`` (no file: an empty configuration)."""
    if path is None:
        return ConfigFile(source="(no config file)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"SHOPFRONT_CONFIG: {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"SHOPFRONT_CONFIG: cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"SHOPFRONT_CONFIG: {path} is not valid TOML: {exc}") from None
    return config_from_mapping(data, source=str(path))


def config_from_mapping(data: Mapping[str, Any], source: str = "(inline config)") -> ConfigFile:
    """A `ConfigFile` from an already-parsed mapping (tests and embedding use this)."""
    unknown = sorted(set(data) - set(KNOWN_SECTIONS))
    if unknown:
        raise ConfigError(
            f"{source}: unknown section(s) {', '.join(unknown)}; "
            f"known sections: {', '.join(KNOWN_SECTIONS)}"
        )
    sections: dict[str, Any] = {}
    for name in ("plugins", "strategies"):
        raw = data.get(name, {})
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{source}: [{name}] must be a table of tables")
        for key, value in raw.items():
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: [{name}.{key}] must be a table")
        sections[name] = {k: dict(v) for k, v in raw.items()}
    for name in ("slots", "shipping"):
        raw = data.get(name, {})
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{source}: [{name}] must be a table")
        sections[name] = dict(raw)
    return ConfigFile(source=source, **sections)


def _where(plugin: str, strategy: str | None, key: str) -> str:
    if strategy is None:
        return f"plugin {plugin!r}: [plugins.{plugin}] key {key!r}"
    return f"plugin {plugin!r}, strategy {strategy!r}: [strategies.{strategy}] key {key!r}"


def _resolve_env(
    value: str, plugin: str, strategy: str | None, key: str, environ: Mapping[str, str]
) -> str:
    match = _ENV_REF.match(value)
    assert match is not None
    var = match.group(1)
    if var not in environ:
        raise ConfigError(f"{_where(plugin, strategy, key)}: environment variable {var} is not set")
    return environ[var]


def _from_env_text(text: str, default: Any, where: str) -> Any:
    """Convert a secret read from the environment to the default's type."""
    try:
        if isinstance(default, bool):
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
        if isinstance(default, int):
            return int(text.strip())
        if isinstance(default, float):
            return float(text.strip())
    except ValueError as exc:
        raise ConfigError(
            f"{where}: environment value is not a valid {kind_of(default)}: {exc}"
        ) from None
    if default is None or isinstance(default, str):
        return text
    raise ConfigError(f"{where}: only text, number and boolean values can come from env:")


def check_value(default: Any, value: Any, where: str) -> Any:
    """``value`` converted to the shape of ``default``, or a `ConfigError` naming ``where``.

    The default decides the type: booleans are never numbers; an integer is accepted where the
    default is a float; arrays are checked element-wise against the default's first element;
    tables key by key when the default table has keys. A None default accepts anything.
    """
    if default is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise ConfigError(f"{where}: must be a finite number, got {value!r}")
        if ok:
            return float(value)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {kind_of(value)} {value!r}")
        if not default:
            return dict(value)
        unknown = sorted(set(value) - set(default))
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(default))}"
            )
        return {
            k: check_value(default[k], value[k], f"{where}.{k}") if k in value else default[k]
            for k in default
        }
    elif isinstance(default, list | tuple):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ConfigError(f"{where}: expected an array, got {kind_of(value)} {value!r}")
        items = list(value)
        if default:
            items = [check_value(default[0], v, f"{where}[{i}]") for i, v in enumerate(items)]
        return tuple(items) if isinstance(default, tuple) else items
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(
            f"{where}: expected {kind_of(default)} (like the default {default!r}), "
            f"got {kind_of(value)} {value!r}"
        )
    return value


def _env_scalar(tp: Any) -> Any:
    """A sample value of the scalar type an ``env:`` value converts to, or None (text)."""
    options = [a for a in (typing.get_args(tp) or (tp,)) if a is not type(None)]
    for kind, sample in ((bool, False), (int, 0), (float, 0.0), (str, "")):
        if kind in options:
            return sample
    return None


def _host_values(
    plugin: str,
    strategy: str,
    given: Mapping[str, Any],
    host_defaults: Mapping[str, Any],
    env: Mapping[str, str],
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in HOST_KEYS:
        if key not in given:
            values[key] = host_defaults[key]
            continue
        where = _where(plugin, strategy, key)
        raw = given[key]
        if isinstance(raw, str) and _ENV_REF.match(raw):
            text = _resolve_env(raw, plugin, strategy, key, env)
            raw = _from_env_text(text, host_defaults[key], where)
        values[key] = check_value(host_defaults[key], raw, where)
    for key in ("timeout_ms", "breaker_failures"):
        if values[key] < 1:
            raise ConfigError(f"{_where(plugin, strategy, key)}: must be at least 1")
    if values["breaker_cooldown_ms"] < 0:
        raise ConfigError(f"{_where(plugin, strategy, 'breaker_cooldown_ms')}: must be >= 0")
    return values


def _resolve_declared(
    *,
    plugin: str,
    strategy: str,
    config_type: type[Any],
    secrets: Sequence[str],
    section: Mapping[str, Any] | None,
    settings: Settings,
    env: Mapping[str, str],
) -> StrategyConfig:
    """`resolve_strategy_config` for a spec that declares its settings."""
    head = f"plugin {plugin!r}, strategy {strategy!r}"
    try:
        declared = {s.name: s for s in describe_settings(config_type)}
    except SettingError as exc:
        raise ConfigError(f"{head}: config_type {config_type.__name__}: {exc}") from None
    clash = sorted((set(declared) & set(HOST_KEYS)) - {"enabled"})
    if clash:
        raise ConfigError(
            f"{head}: config_type declares host setting(s) {', '.join(clash)}; rename them"
        )
    if "enabled" in declared and declared["enabled"].type != "bool":
        raise ConfigError(f"{head}: config_type's 'enabled' must be a bool")
    unknown_secrets = sorted(set(secrets) - set(declared))
    if unknown_secrets:
        raise ConfigError(
            f"{head}: secrets name setting(s) {', '.join(unknown_secrets)} that "
            f"{config_type.__name__} does not declare"
        )
    enabled_default = declared["enabled"].default if "enabled" in declared else True
    host_defaults: dict[str, Any] = {
        "enabled": enabled_default if isinstance(enabled_default, bool) else True,
        "timeout_ms": settings.strategy_timeout_ms,
        "breaker_failures": settings.breaker_failures,
        "breaker_cooldown_ms": settings.breaker_cooldown_ms,
    }
    given = dict(section or {})
    hidden = set(secrets) | {s.name for s in declared.values() if s.secret}
    values: dict[str, Any] = {}
    for key, raw in given.items():
        if key in HOST_KEYS and key not in declared:
            continue
        if key not in declared:
            known = sorted(set(declared) | set(HOST_KEYS))
            raise ConfigError(
                f"{_where(plugin, strategy, key)}: unknown key; known keys: {', '.join(known)}"
            )
        if isinstance(raw, str) and _ENV_REF.match(raw):
            text = _resolve_env(raw, plugin, strategy, key, env)
            sample = _env_scalar(field_type(config_type, key))
            raw = (
                text
                if sample is None
                else _from_env_text(text, sample, _where(plugin, strategy, key))
            )
            hidden.add(key)
        values[key] = raw
    host = _host_values(plugin, strategy, given, host_defaults, env)
    if "enabled" in declared and "enabled" in values:
        host["enabled"] = values["enabled"]
    try:
        if host["enabled"]:
            instance: Any = parse_settings(config_type, values)
        else:
            # Switched off: what is given must fit, but required settings may still be unset.
            check_settings(config_type, values)
            instance = None
    except SettingError as exc:
        raise ConfigError(f"{_where(plugin, strategy, exc.path)}: {exc.message}") from None
    if instance is not None:
        effective: dict[str, Any] = plain(instance)
    else:
        effective = {name: s.default for name, s in declared.items() if not s.required}
        effective.update({k: plain(v) for k, v in values.items()})
    effective.pop("enabled", None)  # reported as the strategy's own `enabled`
    shown = {k: (HIDDEN if k in hidden else v) for k, v in effective.items()}
    return StrategyConfig(
        values=effective,
        shown=shown,
        enabled=host["enabled"],
        timeout_ms=host["timeout_ms"],
        breaker_failures=host["breaker_failures"],
        breaker_cooldown_ms=host["breaker_cooldown_ms"],
        declared=instance,
    )


def resolve_strategy_config(
    *,
    plugin: str,
    strategy: str,
    defaults: Mapping[str, Any],
    secrets: Sequence[str],
    section: Mapping[str, Any] | None,
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    config_type: type[Any] | None = None,
) -> StrategyConfig:
    """Validate one ``[strategies.<name>]`` section against the spec's declared settings
    (``config_type``) or, without them, its defaults.

    A spec may default ``enabled`` (a boolean: in ``default_config`` or as a declared setting)
    — ``False`` ships the strategy switched off until the merchant configures and enables it;
    the other host keys are the host's.
    """
    env = os.environ if environ is None else environ
    if config_type is not None:
        return _resolve_declared(
            plugin=plugin,
            strategy=strategy,
            config_type=config_type,
            secrets=secrets,
            section=section,
            settings=settings,
            env=env,
        )
    enabled_default = defaults.get("enabled", True)
    if not isinstance(enabled_default, bool):
        raise ConfigError(
            f"plugin {plugin!r}, strategy {strategy!r}: default_config 'enabled' must be a boolean"
        )
    defaults = {k: v for k, v in defaults.items() if k != "enabled"}
    clash = sorted(set(defaults) & set(HOST_KEYS))
    if clash:
        raise ConfigError(
            f"plugin {plugin!r}, strategy {strategy!r}: default_config uses host key(s) "
            f"{', '.join(clash)}; rename them"
        )
    unknown_secrets = sorted(set(secrets) - set(defaults))
    if unknown_secrets:
        raise ConfigError(
            f"plugin {plugin!r}, strategy {strategy!r}: secrets name key(s) "
            f"{', '.join(unknown_secrets)} that are not in default_config"
        )
    given = dict(section or {})
    host_defaults: dict[str, Any] = {
        "enabled": enabled_default,
        "timeout_ms": settings.strategy_timeout_ms,
        "breaker_failures": settings.breaker_failures,
        "breaker_cooldown_ms": settings.breaker_cooldown_ms,
    }
    values: dict[str, Any] = {}
    hidden: set[str] = set(secrets)
    for key, raw in given.items():
        where = _where(plugin, strategy, key)
        if key not in defaults and key not in HOST_KEYS:
            known = sorted(set(defaults) | set(HOST_KEYS))
            raise ConfigError(f"{where}: unknown key; known keys: {', '.join(known)}")
        default = defaults[key] if key in defaults else host_defaults[key]
        if isinstance(raw, str) and _ENV_REF.match(raw):
            raw = _from_env_text(_resolve_env(raw, plugin, strategy, key, env), default, where)
            hidden.add(key)
        values[key] = check_value(default, raw, where)
    host = {k: values.pop(k, host_defaults[k]) for k in HOST_KEYS}
    for key in ("timeout_ms", "breaker_failures"):
        if host[key] < 1:
            raise ConfigError(f"{_where(plugin, strategy, key)}: must be at least 1")
    if host["breaker_cooldown_ms"] < 0:
        raise ConfigError(f"{_where(plugin, strategy, 'breaker_cooldown_ms')}: must be >= 0")
    merged = {**{k: _copy(v) for k, v in defaults.items()}, **values}
    shown = {k: (HIDDEN if k in hidden else v) for k, v in merged.items()}
    return StrategyConfig(
        values=merged,
        shown=shown,
        enabled=host["enabled"],
        timeout_ms=host["timeout_ms"],
        breaker_failures=host["breaker_failures"],
        breaker_cooldown_ms=host["breaker_cooldown_ms"],
    )


def resolve_plugin_config(
    plugin: str, section: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A plugin's ``[plugins.<name>]`` start-up config: (values, shown with secrets hidden).

    Start-up config has no declared defaults, so values keep their TOML types; top-level
    ``env:VAR`` strings are resolved and hidden.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    shown: dict[str, Any] = {}
    for key, raw in (section or {}).items():
        if isinstance(raw, str) and _ENV_REF.match(raw):
            values[key] = _resolve_env(raw, plugin, None, key, env)
            shown[key] = HIDDEN
        else:
            values[key] = raw
            shown[key] = raw
    return values, shown


def _copy(value: Any) -> Any:
    """Defaults are shared spec data: give each strategy its own containers."""
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
