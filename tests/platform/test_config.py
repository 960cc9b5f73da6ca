from __future__ import annotations

from pathlib import Path

import pytest
from shopfront.platform.config import (
    ConfigError,
    Settings,
    describe,
    setting_names,
    user_data_dir,
)


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.port == 8000
    # Tests run from the source checkout: its .shopfront/ folder, whatever the current folder.
    assert s.data_dir == Path(__file__).resolve().parents[2] / ".shopfront"
    assert s.mongo_driver == "motor"
    assert s.embedded and not s.introspection_enabled


def test_reads_typed_values() -> None:
    s = Settings.from_env(
        {
            "SHOPFRONT_PORT": "9000",
            "SHOPFRONT_INTROSPECTION": "yes",
            "SHOPFRONT_MONGO_DRIVER": "pymongo",
            "SHOPFRONT_CONFIG": "x.toml",
        }
    )
    assert (s.port, s.introspection, s.mongo_driver) == (9000, True, "pymongo")
    assert s.config_file == Path("x.toml")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SHOPFRONT_PORT": "eighty"}, "SHOPFRONT_PORT"),
        ({"SHOPFRONT_PORT": "-1"}, "SHOPFRONT_PORT"),
        ({"SHOPFRONT_MONGO_DRIVER": "mongoose"}, "SHOPFRONT_MONGO_DRIVER"),
        ({"SHOPFRONT_INTROSPECTION": "maybe"}, "SHOPFRONT_INTROSPECTION"),
        ({"SHOPFRONT_MONGODB_URI": "http://x"}, "SHOPFRONT_MONGODB_URI"),
        ({"SHOPFRONT_MONGO_OPERATION_TIMEOUT_MS": "0"}, "SHOPFRONT_MONGO_OPERATION_TIMEOUT_MS"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)


def test_every_setting_has_the_prefix() -> None:
    assert all(name.startswith("SHOPFRONT_") for name in setting_names())


def test_event_weights_default_and_partial_override() -> None:
    from shopfront.platform.vocabulary import EVENT_TYPES

    defaults = Settings.from_env({}).event_weight_map
    assert set(defaults) == set(EVENT_TYPES)
    assert defaults["purchase"] > defaults["add_to_cart"] > defaults["view"] > 0
    assert defaults["not_interested"] < 0 and defaults["impression"] == 0
    custom = Settings.from_env({"SHOPFRONT_EVENT_WEIGHTS": " purchase = 20 , VIEW=0.5 "})
    assert custom.event_weight_map["purchase"] == 20
    assert custom.event_weight_map["view"] == 0.5
    assert custom.event_weight_map["click"] == defaults["click"]  # left out: default kept


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("view=1,clack=2", "'clack' is not an event type"),
        ("view", "'view' is not TYPE=WEIGHT"),
        ("view=lots", "the weight is not a number"),
        ("view=inf", "must be a finite number"),
        ("view=1,view=2", "'view' is given twice"),
    ],
)
def test_bad_event_weights_are_explained(value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match="SHOPFRONT_EVENT_WEIGHTS") as info:
        Settings.from_env({"SHOPFRONT_EVENT_WEIGHTS": value})
    assert problem in str(info.value)


@pytest.mark.parametrize(
    "env",
    [
        {"SHOPFRONT_EVENT_RETENTION_DAYS": "0"},
        {"SHOPFRONT_AFFINITY_HALF_LIFE_DAYS": "0"},
        {"SHOPFRONT_RECENTLY_VIEWED_MAX": "0"},
        {"SHOPFRONT_MAX_EVENTS_PER_CALL": "0"},
        {"SHOPFRONT_PREFERENCE_WEIGHT": "-1"},
    ],
)
def test_event_settings_have_lower_bounds(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=next(iter(env))):
        Settings.from_env(env)


def test_per_user_data_dir_follows_xdg(tmp_path: Path) -> None:
    assert user_data_dir({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "shopfront"
    assert user_data_dir({"XDG_DATA_HOME": "relative"}) == (
        Path.home() / ".local" / "share" / "shopfront"
    )


def test_settings_table_defaults_read_as_environment_values() -> None:
    defaults = {name: default for name, default, _ in describe()}
    assert defaults["SHOPFRONT_RATE_LIMIT_ENABLED"] == "`true`"
    assert defaults["SHOPFRONT_PLUGINS_STRICT"] == "`false`"
    assert defaults["SHOPFRONT_PLUGINS_ALLOW"] == ""
    assert defaults["SHOPFRONT_PORT"] == "`8000`"
    assert "~/.local/share/shopfront" in defaults["SHOPFRONT_DATA_DIR"]
    assert not any("()" in d or "True" in d or "None" in d for d in defaults.values())
