"""Loading plugins: built-ins, registered objects, entry points (hermetic, from a temporary
dist-info), strict mode, allow/deny lists, hook validation, duplicate names, and the
start-up hooks (`register_*`, `startup`)."""

from __future__ import annotations

import dataclasses
import logging
import sys
import textwrap
import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from shopfront.extend.config import config_from_mapping
from shopfront.extend.hookspecs import hookimpl
from shopfront.extend.host import PluginHost
from shopfront.extend.records import PluginError, StrategyKind
from shopfront.platform.config import ConfigError, Settings
from shopfront.platform.store import Store
from shopfront.platform.strategy_setup import StrategySetup
from shopfront.recommend.contract import RecommenderSpec

from tests.plugin_doubles import (
    ListRecommender,
    SpecPlugin,
    fixed_coupon,
    list_recommender,
    percent_off,
)


async def start(
    settings: Settings,
    store: Store,
    plugins: Sequence[tuple[str, object]] = (),
    *,
    config: Mapping[str, Any] | None = None,
    discover: bool = False,
    builtins: Sequence[str] = (),
    **overrides: Any,
) -> PluginHost:
    return await PluginHost.start(
        dataclasses.replace(settings, **overrides),
        store,
        builtins=builtins,
        plugins=plugins,
        discover=discover,
        config=config_from_mapping(config or {}),
    )


def write_distribution(root: Path, dist: str, entry_points: Mapping[str, str]) -> None:
    """A minimal installed distribution on ``root`` with ``shopfront`` entry points."""
    info = root / f"{dist}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[shopfront]\n{lines}\n")


GOOD_MODULE = """
from shopfront.extend.hookspecs import hookimpl
from shopfront.recommend.contract import RecommenderSpec
from tests.plugin_doubles import ListRecommender

@hookimpl
def register_recommenders():
    return [RecommenderSpec("{strategy}", ListRecommender, "entry point", {{"ids": ["p1"]}})]
"""


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def installed(plugin_dir: Path) -> tuple[str, str, str]:
    """Install (on sys.path) a distribution with a good and a broken entry point; return
    their names and the good one's strategy name (unique per test)."""
    tag = uuid.uuid4().hex[:8]
    good, broken, strategy = f"good_{tag}", f"broken_{tag}", f"ep_list_{tag}"
    (plugin_dir / f"sf_good_{tag}.py").write_text(GOOD_MODULE.format(strategy=strategy))
    (plugin_dir / f"sf_broken_{tag}.py").write_text(
        "raise RuntimeError('this plugin cannot even import')\n"
    )
    write_distribution(
        plugin_dir,
        f"merchant_plugins_{tag}",
        {good: f"sf_good_{tag}", broken: f"sf_broken_{tag}"},
    )
    return good, broken, strategy


async def test_entry_point_discovery_skips_a_broken_plugin_with_a_warning(
    settings: Settings, store: Store, plugin_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good, broken, strategy = installed(plugin_dir)
    caplog.set_level(logging.WARNING, "shopfront.plugins")
    host = await start(settings, store, discover=True, plugins_allow=(good, broken))
    try:
        assert host.plugin_names == (good,)
        assert broken in host.skipped and "cannot even import" in host.skipped[broken]
        assert any(broken in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
        report = {r.name: r for r in host.report()}[good]
        assert report.source == "entry point"
        assert report.distribution is not None and report.distribution.startswith("merchant_")
        assert report.version == "1.2.3"
        assert [s.name for s in report.strategies] == [strategy]
    finally:
        await host.close()


async def test_strict_mode_stops_start_up_naming_the_broken_plugin(
    settings: Settings, store: Store, plugin_dir: Path
) -> None:
    good, broken, _ = installed(plugin_dir)
    with pytest.raises(PluginError, match=broken):
        await start(
            settings, store, discover=True, plugins_allow=(good, broken), plugins_strict=True
        )


async def test_deny_list_keeps_a_plugin_from_even_importing(
    settings: Settings, store: Store, plugin_dir: Path
) -> None:
    good, broken, _ = installed(plugin_dir)
    host = await start(
        settings,
        store,
        discover=True,
        plugins_allow=(good, broken),
        plugins_deny=(broken,),
        plugins_strict=True,  # strict, yet the broken plugin is never loaded: it is denied
    )
    try:
        assert host.plugin_names == (good,)
        assert host.skipped[broken] == "denied"
    finally:
        await host.close()


async def test_an_entry_point_cannot_take_a_loaded_plugins_name(
    settings: Settings, store: Store, plugin_dir: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    (plugin_dir / f"sf_same_{tag}.py").write_text(GOOD_MODULE.format(strategy=f"other_{tag}"))
    write_distribution(plugin_dir, f"clash_{tag}", {"shop": f"sf_same_{tag}"})
    mine = SpecPlugin(recommenders=[list_recommender("mine", ["p1"])])
    host = await start(settings, store, [("shop", mine)], discover=True, plugins_allow=("shop",))
    try:
        assert host.plugin_names == ("shop",)
        strategy = host.strategy("mine")  # the registered plugin kept its name and strategies
        assert strategy is not None and strategy.obj is not None
        assert host.strategy(f"other_{tag}") is None
    finally:
        await host.close()


async def test_allow_and_deny_apply_to_registered_plugins(settings: Settings, store: Store) -> None:
    a = SpecPlugin(recommenders=[list_recommender("a_list", ["p1"])])
    b = SpecPlugin(recommenders=[list_recommender("b_list", ["p2"])])
    host = await start(settings, store, [("a", a), ("b", b)], plugins_deny=("b",))
    try:
        assert host.plugin_names == ("a",)
        assert host.unavailable("b_list", StrategyKind.RECOMMENDER) is not None
    finally:
        await host.close()
    host = await start(settings, store, [("a", a), ("b", b)], plugins_allow=("b",))
    try:
        assert host.plugin_names == ("b",)
        assert host.skipped["a"] == "not allowed"
    finally:
        await host.close()


async def test_builtin_modules_load_by_name_and_must_import(
    settings: Settings, store: Store
) -> None:
    host = await start(settings, store, builtins=("tests.builtin_double",))
    try:
        [report] = host.report()
        assert (report.name, report.source, report.distribution) == (
            "builtin_double",
            "builtin",
            "shopfront",
        )
        assert "register_recommenders" in report.hooks
    finally:
        await host.close()
    with pytest.raises(PluginError, match=r"tests\.no_such_module"):
        await start(settings, store, builtins=("tests.no_such_module",))


class UnknownHook:
    @hookimpl
    def register_recommenders(self) -> list[RecommenderSpec]:
        return []

    @hookimpl
    def recommend_everything(self) -> None:  # no such hook specification
        return None


async def test_an_implementation_without_a_specification_is_refused(
    settings: Settings, store: Store
) -> None:
    with pytest.raises(PluginError, match=r"recommend_everything"):
        await start(settings, store, [("odd", UnknownHook())])


class WrongArguments:
    @hookimpl
    def on_event(self, event: Any, shopper: Any) -> None:  # `shopper` is not in the spec
        return None


async def test_an_implementation_with_unknown_arguments_is_refused(
    settings: Settings, store: Store
) -> None:
    with pytest.raises(PluginError, match="wrongargs"):
        await start(settings, store, [("wrongargs", WrongArguments())])


async def test_duplicate_strategy_names_name_both_plugins(settings: Settings, store: Store) -> None:
    first = SpecPlugin(recommenders=[list_recommender("popular", ["p1"])])
    second = SpecPlugin(coupons=[fixed_coupon("popular", "X")])
    with pytest.raises(PluginError, match=r"'popular'.*'first'.*'second'"):
        await start(settings, store, [("first", first), ("second", second)])


class BadSpecs:
    @hookimpl
    def register_recommenders(self) -> Any:
        return [{"name": "not-a-spec"}]


async def test_register_hooks_must_return_specs(settings: Settings, store: Store) -> None:
    with pytest.raises(PluginError, match=r"badspecs.*RecommenderSpec"):
        await start(settings, store, [("badspecs", BadSpecs())])


async def test_register_hooks_build_every_kind_with_its_config(
    settings: Settings, store: Store
) -> None:
    plugin = SpecPlugin(
        recommenders=[list_recommender("listed", ["p1", "p2"])],
        coupons=[fixed_coupon("welcome", "HELLO")],
        promotions=[percent_off("ten_off", 10, priority=5), percent_off("five_off", 5)],
    )
    config = {
        "strategies": {
            "listed": {"ids": ["p9"], "timeout_ms": 321},
            "welcome": {"code": "HI20"},
            "five_off": {"priority": 1},
        }
    }
    host = await start(settings, store, [("kinds", plugin)], config=config)
    try:
        listed = host.strategy("listed")
        assert listed is not None and isinstance(listed.obj, ListRecommender)
        assert listed.obj.ids == ["p9"] and listed.config.timeout_ms == 321
        assert [s.name for s in host.coupon_strategies()] == ["welcome"]
        assert host.coupon_strategies()[0].obj.code == "HI20"
        # chain order follows terms.priority, which config changed for five_off
        assert [p.terms.name for p in host.promotions()] == ["five_off", "ten_off"]
        [report] = host.report()
        assert report.hooks == (
            "register_coupon_strategies",
            "register_promotions",
            "register_recommenders",
        )
    finally:
        await host.close()


async def test_disabled_strategy_is_not_built(settings: Settings, store: Store) -> None:
    built: list[str] = []

    def factory(setup: StrategySetup) -> ListRecommender:
        built.append(setup.name)
        return ListRecommender(setup)

    plugin = SpecPlugin(recommenders=[RecommenderSpec("off", factory, "off", {"ids": []})])
    host = await start(
        settings, store, [("p", plugin)], config={"strategies": {"off": {"enabled": False}}}
    )
    try:
        assert built == []
        problem = host.unavailable("off", StrategyKind.RECOMMENDER)
        assert problem is not None and problem.reason == "disabled"
        assert host.report()[0].strategies[0].enabled is False
    finally:
        await host.close()


class StartupPlugin:
    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, Any], str]] = []

    @hookimpl
    def startup(self, config: Mapping[str, Any]) -> Any:
        async def run() -> None:
            self.seen.append((dict(config), threading.current_thread().name))

        return run()


async def test_startup_hook_gets_its_plugin_section_on_the_plugin_thread(
    settings: Settings, store: Store
) -> None:
    plugin = StartupPlugin()
    environ = {"MERCHANT_API_KEY": "s3cret"}
    host = await PluginHost.start(
        settings,
        store,
        builtins=(),
        plugins=[("boot", plugin)],
        discover=False,
        config=config_from_mapping(
            {"plugins": {"boot": {"region": "eu", "api_key": "env:MERCHANT_API_KEY"}}}
        ),
        environ=environ,
    )
    try:
        [(config, thread)] = plugin.seen
        assert config == {"region": "eu", "api_key": "s3cret"}
        assert thread == "shopfront-plugin:boot"
        assert host.report()[0].config == {"region": "eu", "api_key": "***"}
    finally:
        await host.close()


class FailingStartup:
    @hookimpl
    def startup(self, config: Mapping[str, Any]) -> None:
        raise OSError("model file missing")


async def test_failing_startup_of_a_registered_plugin_stops_start_up(
    settings: Settings, store: Store
) -> None:
    with pytest.raises(PluginError, match=r"'boot'.*startup hook raised OSError"):
        await start(settings, store, [("boot", FailingStartup())])


class SavesButNeverTrains:
    """Saves and loads a model, but its author forgot ``fit``."""

    async def recommend(self, ctx: Any, slot: Any) -> list[Any]:
        return []

    def dump_model(self) -> Any:
        return None

    def load_model(self, arrays: Any) -> None:
        return None


class TrainsButNeverSaves:
    async def recommend(self, ctx: Any, slot: Any) -> list[Any]:
        return []

    async def fit(self, data: Any) -> None:
        return None


class TrainsSynchronously(SavesButNeverTrains):
    def fit(self, data: Any) -> None:
        return None


@pytest.mark.parametrize(
    ("recommender", "problem"),
    [
        (SavesButNeverTrains, "has no training method"),
        (TrainsButNeverSaves, "never saved"),
        (TrainsSynchronously, "must be `async def fit"),
    ],
)
async def test_a_recommender_that_would_never_serve_a_model_is_refused_at_registration(
    settings: Settings, store: Store, recommender: type, problem: str
) -> None:
    spec = RecommenderSpec("learner", lambda setup: recommender(), "learns from events")
    plugin = SpecPlugin(recommenders=[spec])
    with pytest.raises(PluginError, match=rf"plugin 'forgetful'.*'learner'.*{problem}"):
        await start(settings, store, [("forgetful", plugin)])


async def test_factory_failure_of_an_entry_point_plugin_skips_it(
    settings: Settings, store: Store, plugin_dir: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    (plugin_dir / f"sf_factory_{tag}.py").write_text(
        textwrap.dedent(
            f"""
            from shopfront.extend.hookspecs import hookimpl
            from shopfront.recommend.contract import RecommenderSpec

            def factory(setup):
                raise ValueError("no model")

            @hookimpl
            def register_recommenders():
                return [RecommenderSpec("needs_model_{tag}", factory, "needs a model")]
            """
        )
    )
    write_distribution(plugin_dir, f"factory_fail_{tag}", {f"fails_{tag}": f"sf_factory_{tag}"})
    host = await start(settings, store, discover=True, plugins_allow=(f"fails_{tag}",))
    try:
        assert host.plugin_names == ()
        assert "factory raised ValueError: no model" in host.skipped[f"fails_{tag}"]
        assert host.strategy(f"needs_model_{tag}") is None
    finally:
        await host.close()
        sys.modules.pop(f"sf_factory_{tag}", None)


async def test_config_errors_name_plugin_strategy_and_key(settings: Settings, store: Store) -> None:
    plugin = SpecPlugin(recommenders=[list_recommender("listed", ["p1"])])
    with pytest.raises(ConfigError, match=r"plugin 'cfg', strategy 'listed'.*key 'idz'"):
        await start(
            settings, store, [("cfg", plugin)], config={"strategies": {"listed": {"idz": []}}}
        )
    with pytest.raises(ConfigError, match=r"plugin 'cfg', strategy 'listed'.*key 'ids'.*array"):
        await start(
            settings, store, [("cfg", plugin)], config={"strategies": {"listed": {"ids": "p1"}}}
        )
    with pytest.raises(ConfigError, match=r"key 'timeout_ms'.*integer"):
        await start(
            settings,
            store,
            [("cfg", plugin)],
            config={"strategies": {"listed": {"timeout_ms": "fast"}}},
        )


async def test_config_file_is_read_from_shopfront_config(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "shopfront.toml"
    path.write_text('[strategies.listed]\nids = ["from-file"]\n')
    plugin = SpecPlugin(recommenders=[list_recommender("listed", ["p1"])])
    host = await PluginHost.start(
        dataclasses.replace(settings, config_file=path),
        store,
        builtins=(),
        plugins=[("cfg", plugin)],
        discover=False,
    )
    try:
        strategy = host.strategy("listed")
        assert strategy is not None and strategy.obj.ids == ["from-file"]
    finally:
        await host.close()


async def test_factories_receive_a_store_bound_to_their_plugin_loop(
    settings: Settings, store: Store
) -> None:
    seen: dict[str, Any] = {}

    class Counting:
        def __init__(self, setup: StrategySetup) -> None:
            self.store = setup.store

        async def recommend(self, ctx: Any, slot: Any) -> list[Any]:
            seen["count"] = await self.store.products.count_documents({})
            return []

    await store.products.insert_one({"id": "p1"})
    plugin = SpecPlugin(recommenders=[RecommenderSpec("counting", Counting, "counts")])
    host = await start(settings, store, [("db", plugin)])
    try:
        strategy = host.strategy("counting")
        assert strategy is not None and strategy.obj.store is not store
        await host.run_on_strategy("counting", lambda r: r.recommend(None, None), 5.0)
        assert seen["count"] == 1
    finally:
        await host.close()
