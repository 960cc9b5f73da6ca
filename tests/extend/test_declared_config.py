"""Strategy settings declared as a dataclass (`config_type`): the config file is checked
against the declared types, list item types and bounds, every error names the plugin, the
strategy, the setting and the value, and the `plugins` query shows the effective config."""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from shopfront import (
    Candidate,
    ConfigError,
    Money,
    RecommenderSpec,
    RequestContext,
    Slot,
    StrategySetup,
    hookimpl,
    setting,
)
from shopfront.extend.config import HIDDEN, resolve_strategy_config
from shopfront.extend.records import PluginError
from shopfront.platform.config import Settings
from shopfront.platform.config_schema import SettingError, describe_settings, parse_settings
from shopfront.platform.keys import Role, create_key
from shopfront.testing import PluginHostFactory, StorefrontClientFactory


class Tone(enum.Enum):
    WARM = "warm"
    COOL = "cool"


@dataclass(frozen=True)
class Weights:
    view: float = setting(1.0, min=0.0)
    purchase: float = setting(5.0, min=0.0)


@dataclass(frozen=True)
class PicksConfig:
    product_ids: list[str] = setting(default_factory=list, doc="Products, in order.", min_len=1)
    reason: str = setting("Staff pick", doc="Shown to the shopper.", min_len=1, max_len=40)
    boost: float = setting(1.0, min=0.0, max=10.0)
    limit: int = setting(10, min=1, max=50)
    tone: Tone = Tone.WARM
    mode: Literal["strict", "loose"] = "strict"
    weights: Weights = setting(default_factory=Weights)
    boosts: dict[str, float] = setting(
        default_factory=lambda: {"a": 1.0, "b": 2.0}, min=0.0, merge=True
    )
    min_spend: Money | None = None
    token: str = setting("", secret=True)


def resolve(section: dict[str, Any] | None, environ: dict[str, str] | None = None) -> Any:
    return resolve_strategy_config(
        plugin="staff",
        strategy="staff_picks",
        defaults={},
        secrets=(),
        section=section,
        settings=Settings(),
        environ=environ or {},
        config_type=PicksConfig,
    )


def test_values_are_converted_to_their_declared_types() -> None:
    cfg = resolve(
        {
            "product_ids": ["p1", "p2"],
            "boost": 2,
            "tone": "cool",
            "weights": {"view": 0.5},
            "boosts": {"b": 3},
            "min_spend": {"amount": 3000, "currency": "EUR"},
            "timeout_ms": 150,
        }
    )
    config = cfg.declared
    assert isinstance(config, PicksConfig)
    assert config.product_ids == ["p1", "p2"] and config.boost == 2.0
    assert isinstance(config.boost, float) and config.tone is Tone.COOL
    assert config.weights == Weights(view=0.5, purchase=5.0)  # a table fills from its defaults
    assert config.boosts == {"a": 1.0, "b": 3.0}  # merge: the other keys keep their defaults
    assert config.min_spend == Money(3000, "EUR")
    assert cfg.timeout_ms == 150 and cfg.enabled is True
    # the effective config, as plain data, with the secret hidden
    assert cfg.shown == {
        "product_ids": ["p1", "p2"],
        "reason": "Staff pick",
        "boost": 2.0,
        "limit": 10,
        "tone": "cool",
        "mode": "strict",
        "weights": {"view": 0.5, "purchase": 5.0},
        "boosts": {"a": 1.0, "b": 3.0},
        "min_spend": {"amount": 3000, "currency": "EUR"},
        "token": HIDDEN,
    }
    assert cfg.values["token"] == ""


@pytest.mark.parametrize(
    ("section", "setting_name", "problem"),
    [
        # the case: a list of ids given numbers is refused item by item
        ({"product_ids": [1, 2]}, r"product_ids\[0\]", r"expected a string, got integer 1"),
        ({"product_ids": "p1"}, "product_ids", r"expected an array .*got string 'p1'"),
        ({"product_ids": []}, "product_ids", r"needs at least 1 items, got \[\]"),
        ({"boost": 11}, "boost", "must be at most 10, got 11"),
        ({"boost": True}, "boost", "expected a number, got boolean True"),
        ({"limit": 2.5}, "limit", "expected an integer, got number 2.5"),
        ({"limit": 0}, "limit", "must be at least 1, got 0"),
        ({"reason": "x" * 41}, "reason", "allows at most 40 characters"),
        ({"tone": "hot"}, "tone", r"must be one of 'warm', 'cool', got 'hot'"),
        ({"mode": "lax"}, "mode", r"must be one of 'strict', 'loose', got 'lax'"),
        ({"weights": {"view": -1}}, r"weights\.view", "must be at least 0, got -1"),
        ({"weights": {"click": 1}}, r"weights\.click", "unknown setting"),
        ({"boosts": {"c": 1.0}}, r"boosts\.c", "unknown key; known keys: a, b"),
        ({"boosts": {"a": -2}}, r"boosts\.a", "must be at least 0"),
        ({"min_spend": {"amount": 1.5, "currency": "EUR"}}, "min_spend", "is not an amount"),
        ({"product_id": ["p1"]}, "product_id", "unknown key; known keys: .*product_ids"),
    ],
)
def test_errors_name_the_plugin_the_strategy_the_setting_and_the_value(
    section: dict[str, Any], setting_name: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        resolve({"product_ids": ["p1"], **section})
    message = str(info.value)
    assert message.startswith("plugin 'staff', strategy 'staff_picks': [strategies.staff_picks]")
    assert re.search(rf"key '{setting_name}': {problem}", message), message


@dataclass(frozen=True, kw_only=True)  # kw_only: a required setting may follow defaults
class NeedsBrand:
    enabled: bool = False  # ships switched off
    brand: str = setting(doc="The brand discounted.", min_len=1)
    limit: int = setting(5, min=1)


def test_a_required_setting_is_required_only_once_the_strategy_is_enabled() -> None:
    def run(section: dict[str, Any] | None) -> Any:
        return resolve_strategy_config(
            plugin="p",
            strategy="s",
            defaults={},
            secrets=(),
            section=section,
            settings=Settings(),
            environ={},
            config_type=NeedsBrand,
        )

    off = run(None)
    assert off.enabled is False and off.declared is None and off.shown == {"limit": 5}
    with pytest.raises(ConfigError, match=r"key 'limit': must be at least 1"):
        run({"limit": 0})  # switched off, but what is given must still fit
    with pytest.raises(ConfigError, match=r"key 'brand': is required \(str\) and not set"):
        run({"enabled": True})
    on = run({"enabled": True, "brand": "Stride"})
    assert on.enabled and on.declared == NeedsBrand(enabled=True, brand="Stride")
    assert on.shown == {"brand": "Stride", "limit": 5}


def test_env_values_convert_to_the_declared_type_and_are_hidden() -> None:
    cfg = resolve(
        {"product_ids": ["p1"], "limit": "env:PICKS_LIMIT", "reason": "env:PICKS_REASON"},
        environ={"PICKS_LIMIT": "7", "PICKS_REASON": "Ours"},
    )
    assert cfg.declared.limit == 7 and cfg.declared.reason == "Ours"
    assert cfg.shown["limit"] == HIDDEN and cfg.shown["reason"] == HIDDEN
    with pytest.raises(ConfigError, match=r"'limit'.*not a valid integer"):
        resolve({"limit": "env:PICKS_LIMIT"}, environ={"PICKS_LIMIT": "many"})


def test_a_settings_class_may_not_use_the_hosts_keys() -> None:
    @dataclass(frozen=True)
    class Clash:
        timeout_ms: int = 5

    with pytest.raises(ConfigError, match=r"host setting\(s\) timeout_ms"):
        resolve_strategy_config(
            plugin="p",
            strategy="s",
            defaults={},
            secrets=(),
            section=None,
            settings=Settings(),
            config_type=Clash,
        )


def test_describe_settings_lists_types_defaults_and_bounds() -> None:
    infos = {i.name: i for i in describe_settings(PicksConfig)}
    assert infos["product_ids"].type == "list[str]" and infos["product_ids"].min_len == 1
    assert infos["boost"].default == 1.0 and (infos["boost"].min, infos["boost"].max) == (0, 10)
    assert infos["weights"].default == {"view": 1.0, "purchase": 5.0}
    assert infos["min_spend"].type == "Money | None" and infos["token"].secret
    assert [i.name for i in describe_settings(NeedsBrand) if i.required] == ["brand"]


def test_parse_settings_outside_the_host() -> None:
    assert parse_settings(PicksConfig, {}).limit == 10
    with pytest.raises(SettingError, match=r"^limit: expected an integer"):
        parse_settings(PicksConfig, {"limit": "ten"})


# -- through the host ----------------------------------------------------------------------


class Picks:
    def __init__(self, setup: StrategySetup) -> None:
        self.config = setup.config_as(PicksConfig)

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        return [Candidate(pid, 1.0) for pid in self.config.product_ids]


class PicksPlugin:
    def __init__(self, spec: RecommenderSpec) -> None:
        self.spec = spec

    @hookimpl
    def register_recommenders(self) -> Sequence[RecommenderSpec]:
        return [self.spec]


PICKS = RecommenderSpec(
    "staff_picks", Picks, "Staff picks", config_type=PicksConfig, personalized=False
)


async def test_the_factory_gets_the_validated_instance(
    plugin_host_with: PluginHostFactory,
) -> None:
    config = {"strategies": {"staff_picks": {"product_ids": ["p9"], "boost": 3}}}
    host = await plugin_host_with(PicksPlugin(PICKS), name="staff", config=config)
    strategy = host.strategy("staff_picks")
    assert strategy is not None and strategy.obj.config is strategy.config.declared
    assert strategy.obj.config.boost == 3.0
    with pytest.raises(ConfigError, match=r"plugin 'staff', strategy 'staff_picks'.*\[0\]"):
        await plugin_host_with(
            PicksPlugin(PICKS),
            name="staff",
            config={"strategies": {"staff_picks": {"product_ids": [1]}}},
        )


async def test_a_spec_gives_config_type_or_default_config_not_both(
    plugin_host_with: PluginHostFactory,
) -> None:
    both = RecommenderSpec("both", Picks, "", {"x": 1}, config_type=PicksConfig)
    with pytest.raises(PluginError, match="config_type or default_config, not both"):
        await plugin_host_with(PicksPlugin(both))
    not_a_dataclass = RecommenderSpec("nd", Picks, "", config_type=dict)
    with pytest.raises(PluginError, match="config_type must be a dataclass"):
        await plugin_host_with(PicksPlugin(not_a_dataclass))


async def test_an_empty_array_default_config_is_accepted_with_a_warning(
    plugin_host_with: PluginHostFactory, caplog: pytest.LogCaptureFixture
) -> None:
    class Loose:
        def __init__(self, setup: StrategySetup) -> None:
            self.ids = list(setup.config["ids"])

        async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
            return []

    spec = RecommenderSpec("loose", Loose, "", {"ids": []})
    with caplog.at_level(logging.WARNING, logger="shopfront.plugins"):
        await plugin_host_with(PicksPlugin(spec))
    assert any("'ids' is an empty array" in r.getMessage() for r in caplog.records)


PLUGINS_QUERY = """
{ plugins { name strategies { name config
    settings { name type required default description min max minLength maxLength secret } } } }
"""


async def test_the_plugins_query_shows_effective_config_and_declared_settings(
    storefront_client: StorefrontClientFactory,
) -> None:
    config = {"strategies": {"staff_picks": {"product_ids": ["p1"], "limit": 3}}}
    sf = await storefront_client([("staff", PicksPlugin(PICKS))], config=config)
    _, merchant = await create_key(sf.runtime.store, Role.MERCHANT, "m")
    resp = await sf.http.post(
        "/graphql",
        json={"query": PLUGINS_QUERY},
        headers={"authorization": f"Bearer {merchant}"},
    )
    body = resp.json()
    assert "errors" not in body, body
    [plugin] = [p for p in body["data"]["plugins"] if p["name"] == "staff"]
    [strategy] = plugin["strategies"]
    assert strategy["config"]["product_ids"] == ["p1"] and strategy["config"]["limit"] == 3
    assert strategy["config"]["boost"] == 1.0 and strategy["config"]["token"] == "***"
    settings = {s["name"]: s for s in strategy["settings"]}
    assert settings["product_ids"] == {
        "name": "product_ids",
        "type": "list[str]",
        "required": False,
        "default": [],
        "description": "Products, in order.",
        "min": None,
        "max": None,
        "minLength": 1,
        "maxLength": None,
        "secret": False,
    }
    assert settings["limit"]["min"] == 1 and settings["limit"]["max"] == 50
