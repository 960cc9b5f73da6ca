"""Plugin configuration: file shape, types against defaults, env: secrets, hidden values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from shopfront.extend.config import (
    HIDDEN,
    check_value,
    config_from_mapping,
    load_config_file,
    resolve_strategy_config,
)
from shopfront.platform.config import ConfigError, Settings


def resolve(
    defaults: dict[str, Any],
    section: dict[str, Any] | None,
    secrets: tuple[str, ...] = (),
    environ: dict[str, str] | None = None,
) -> Any:
    return resolve_strategy_config(
        plugin="acme",
        strategy="deals",
        defaults=defaults,
        secrets=secrets,
        section=section,
        settings=Settings(),
        environ=environ or {},
    )


def test_defaults_fill_what_the_file_leaves_out() -> None:
    cfg = resolve({"percent": 10, "brands": ["A"], "ratio": 0.5}, {"ratio": 1})
    assert cfg.values == {"percent": 10, "brands": ["A"], "ratio": 1.0}
    assert isinstance(cfg.values["ratio"], float)
    assert (cfg.enabled, cfg.timeout_ms) == (True, Settings().strategy_timeout_ms)


def test_host_keys_come_from_the_section() -> None:
    cfg = resolve({}, {"timeout_ms": 40, "breaker_failures": 2, "breaker_cooldown_ms": 0})
    assert (cfg.timeout_ms, cfg.breaker_failures, cfg.breaker_cooldown_ms) == (40, 2, 0)
    assert cfg.values == {}
    with pytest.raises(ConfigError, match=r"timeout_ms.*at least 1"):
        resolve({}, {"timeout_ms": 0})


def test_a_spec_may_not_shadow_host_keys() -> None:
    with pytest.raises(ConfigError, match=r"host key.*timeout_ms"):
        resolve({"timeout_ms": 5}, None)


def test_a_spec_may_ship_a_strategy_switched_off() -> None:
    off = resolve({"enabled": False, "brand": ""}, None)
    assert off.enabled is False and off.values == {"brand": ""}
    assert resolve({"enabled": False, "brand": ""}, {"enabled": True}).enabled is True
    with pytest.raises(ConfigError, match="'enabled' must be a boolean"):
        resolve({"enabled": "no"}, None)


@pytest.mark.parametrize(
    ("default", "value", "expected"),
    [
        (1, True, "integer"),
        (True, 1, "boolean"),
        ("x", 3, "string"),
        (1.5, "2", "number"),
        ([1], [1, "two"], r"\[1\].*integer"),
        ({"a": 1}, {"b": 2}, "unknown key"),
    ],
)
def test_wrong_types_are_errors_naming_plugin_strategy_and_key(
    default: Any, value: Any, expected: str
) -> None:
    with pytest.raises(ConfigError, match=rf"plugin 'acme', strategy 'deals'.*'k'.*{expected}"):
        resolve({"k": default}, {"k": value})


def test_unknown_key_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"'percnt'.*known keys: .*percent"):
        resolve({"percent": 10}, {"percnt": 20})


def test_env_secrets_are_resolved_typed_and_hidden() -> None:
    cfg = resolve(
        {"token": "", "limit": 5, "public": "x", "api_key": ""},
        {"token": "env:DEALS_TOKEN", "limit": "env:DEALS_LIMIT"},
        secrets=("api_key",),
        environ={"DEALS_TOKEN": "t0k3n", "DEALS_LIMIT": "7"},
    )
    assert cfg.values["token"] == "t0k3n" and cfg.values["limit"] == 7
    assert cfg.shown == {"token": HIDDEN, "limit": HIDDEN, "public": "x", "api_key": HIDDEN}


def test_missing_env_var_names_it() -> None:
    with pytest.raises(ConfigError, match=r"'token'.*DEALS_TOKEN is not set"):
        resolve({"token": ""}, {"token": "env:DEALS_TOKEN"})
    with pytest.raises(ConfigError, match=r"'limit'.*not a valid integer"):
        resolve({"limit": 1}, {"limit": "env:DEALS_LIMIT"}, environ={"DEALS_LIMIT": "many"})


def test_secrets_must_name_config_keys() -> None:
    with pytest.raises(ConfigError, match=r"secrets name key.*password"):
        resolve({"token": ""}, None, secrets=("password",))


def test_file_sections_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[strategys.x]\na = 1\n")
    with pytest.raises(ConfigError, match=r"unknown section.*strategys"):
        load_config_file(path)
    path.write_text("[strategies\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config_file(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"\[strategies.x\] must be a table"):
        config_from_mapping({"strategies": {"x": 1}})
    assert load_config_file(None).strategies == {}


def test_config_values_are_not_shared_between_strategies() -> None:
    defaults = {"brands": ["A"]}
    first = resolve(defaults, None)
    first.values["brands"].append("B")
    assert resolve(defaults, None).values["brands"] == ["A"]


@given(st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(), st.booleans())
def test_values_of_the_defaults_type_always_pass(i: int, f: float, s: str, b: bool) -> None:
    assert check_value(0, i, "k") == i
    assert check_value(0.0, f, "k") == f
    assert check_value(0.0, i, "k") == float(i)
    assert check_value("", s, "k") == s
    assert check_value(False, b, "k") is b
