from __future__ import annotations

from pathlib import Path

import pytest

from service.config import ConfigError, Settings, setting_names


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.port == 8000
    assert s.data_dir == Path(".shopfront")
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
