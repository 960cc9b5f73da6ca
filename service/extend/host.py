"""The plugin host: the typed facade over pluggy, and the only code that touches the
`pluggy.PluginManager`.

Start-up (`PluginHost.start`), in this order:

1. the built-in plugins, the modules named in `BUILTIN_PLUGINS` (a listed module must import;
   its plugin name is its ``PLUGIN_NAME`` or the last part of its dotted name);
2. plugin objects handed in by the caller (tests, an embedding application);
3. the entry points of the group ``shopfront`` (`importlib.metadata`), named by the entry
   point. A broken one — it fails to import, implements a hook that does not exist, returns
   bad specs, or its factory or ``startup`` hook fails — is skipped with a warning naming it,
   or stops start-up when ``SHOPFRONT_PLUGINS_STRICT=1``;
4. ``SHOPFRONT_PLUGINS_ALLOW`` / ``SHOPFRONT_PLUGINS_DENY`` decide by plugin name, before a
   plugin's code is imported or registered;
5. ``check_pending``: every hook implementation must match a specification;
6. the ``register_*`` hooks give specs; duplicate strategy names (across all kinds) are an
   error naming both plugins; each strategy's config is validated (`shopfront.extend.config`)
   and its factory builds the strategy on the plugin's own loop; then ``startup`` hooks run.

Serving: every strategy call goes through `_call` — on the plugin's loop (see
`shopfront.extend.isolation` for why), under the strategy's deadline, with its output validated
and its circuit breaker consulted. A failure never raises into the request: it comes back as a
`Degradation` (strategy and reason) the storefront lists in ``degraded``, it is logged with the
plugin's name and counted in the strategy's health. Policy hooks are called here too, one
implementation at a time in pluggy's order, so a failing merchant policy is skipped (and
named) instead of failing the request.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, TypeVar

import pluggy
from shopfront.catalog.products import Product
from shopfront.extend import hookspecs
from shopfront.extend.config import (
    ConfigFile,
    StrategyConfig,
    load_config_file,
    resolve_plugin_config,
    resolve_strategy_config,
)
from shopfront.extend.hookspecs import PROJECT
from shopfront.extend.isolation import (
    CircuitBreaker,
    OutputError,
    PluginLoop,
    validate_candidates,
    validate_offers,
    validate_outcome,
)
from shopfront.extend.policy import (
    bind_call,
    builtin_name,
    chosen_offers_check,
    describe_error,
    each_on_loop,
    first_result,
    shopfront_version,
    stacking_plan_check,
)
from shopfront.extend.records import (
    CallObservation,
    CallResult,
    Degradation,
    HealthSnapshot,
    HostedPromotion,
    PluginError,
    PluginRecord,
    PluginReport,
    PluginSource,
    SpecType,
    Strategy,
    StrategyKind,
    StrategyReport,
    health_snapshot,
)
from shopfront.extend.shopper_data import erased_counts, exported
from shopfront.extend.specs import checked_specs, spec_settings
from shopfront.offers.contract import (
    CouponOffer,
    CouponStrategy,
    CouponStrategySpec,
    PricedCart,
    Promotion,
    PromotionOutcome,
    PromotionSpec,
    PromotionTerms,
    StackingPlan,
)
from shopfront.platform.config import ConfigError, Settings
from shopfront.platform.store import Store
from shopfront.platform.strategy_setup import StrategySetup
from shopfront.recommend.contract import (
    Candidate,
    Reason,
    Recommender,
    RecommenderSpec,
    Slot,
    Trainable,
    TrainingData,
)
from shopfront.recommend.models import training_problem
from shopfront.shoppers.context import RequestContext
from shopfront.shoppers.privacy import PluginExport

log = logging.getLogger("shopfront.plugins")

T = TypeVar("T")

# The built-in plugin packages, imported in this order. Each must import: a missing built-in
# is a broken installation, not something to skip. (The recommenders, coupons and promotions
# packages are added here as they land.)
BUILTIN_PLUGINS: tuple[str, ...] = (
    "shopfront.plugins.recommenders",
    "shopfront.plugins.coupons",
    "shopfront.plugins.promotions",
)

ENTRY_POINT_GROUP = PROJECT
_REGISTER_HOOKS: tuple[tuple[str, StrategyKind, type[SpecType]], ...] = (
    ("register_recommenders", StrategyKind.RECOMMENDER, RecommenderSpec),
    ("register_coupon_strategies", StrategyKind.COUPON, CouponStrategySpec),
    ("register_promotions", StrategyKind.PROMOTION, PromotionSpec),
)
_PROTOCOLS: dict[StrategyKind, type] = {
    StrategyKind.RECOMMENDER: Recommender,
    StrategyKind.COUPON: CouponStrategy,
    StrategyKind.PROMOTION: Promotion,
}
_LOOP_HOOKS = ("startup", "on_event", "on_user_erased", "export_user_data")


class PluginHost:
    """Loads plugins, builds their strategies, and calls them safely. See the module doc."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        config: ConfigFile | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.config = config if config is not None else load_config_file(settings.config_file)
        self._environ = environ
        self._clock = clock
        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._plugins: dict[str, PluginRecord] = {}
        self._strategies: dict[str, Strategy] = {}
        self._managed_promotions: list[PromotionSpec] = []
        self._observers: list[Callable[[CallObservation], None]] = []
        self._skipped: dict[str, str] = {}
        self._closed = False

    # -- start-up --------------------------------------------------------------------------

    @classmethod
    async def start(
        cls,
        settings: Settings,
        store: Store,
        *,
        builtins: Sequence[str] = BUILTIN_PLUGINS,
        plugins: Sequence[tuple[str, object]] = (),
        discover: bool | None = None,
        config: ConfigFile | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> PluginHost:
        """Load, validate and build everything; raise `PluginError` / `ConfigError` naming the
        plugin when start-up cannot go on. ``discover`` defaults to the
        ``plugins_entry_points`` setting."""
        host = cls(settings, store, config=config, environ=environ, clock=clock)
        try:
            await host._load(
                builtins, plugins, settings.plugins_entry_points if discover is None else discover
            )
        except BaseException:
            await host.close()
            raise
        return host

    def _wanted(self, name: str) -> bool:
        if name in self.settings.plugins_deny:
            log.info("plugin %r is on the deny list (SHOPFRONT_PLUGINS_DENY): not loaded", name)
            self._skipped[name] = "denied"
            return False
        allow = self.settings.plugins_allow
        if allow and name not in allow:
            log.info("plugin %r is not on the allow list (SHOPFRONT_PLUGINS_ALLOW)", name)
            self._skipped[name] = "not allowed"
            return False
        return True

    def _broken(
        self,
        record_or_name: PluginRecord | str,
        source: PluginSource,
        why: str,
        *,
        registered: bool = True,
    ) -> None:
        """A plugin failed to load: stop start-up, or (an entry point, not strict) skip it.
        ``registered`` False: it never got registered (its name may belong to another)."""
        name = record_or_name if isinstance(record_or_name, str) else record_or_name.name
        message = f"plugin {name!r} ({source}): {why}"
        if source != "entry point" or self.settings.plugins_strict:
            raise PluginError(message)
        log.warning("%s; skipped (set SHOPFRONT_PLUGINS_STRICT=1 to stop start-up)", message)
        if not registered:
            return
        self._skipped[name] = why
        if self._pm.has_plugin(name):
            self._pm.unregister(name=name)
        self._plugins.pop(name, None)
        for sname in [s for s, st in self._strategies.items() if st.plugin.name == name]:
            del self._strategies[sname]

    def _register(
        self,
        name: str,
        obj: object,
        source: PluginSource,
        distribution: str | None,
        version: str | None,
    ) -> None:
        if name in self._plugins:
            other = self._plugins[name]
            self._broken(
                name,
                source,
                f"the name is already taken by a {other.source} plugin; rename it",
                registered=False,
            )
            return
        try:
            self._pm.register(obj, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            self._broken(name, source, f"cannot be registered: {exc}", registered=False)
            return
        unknown = sorted(
            caller.name
            for caller in self._pm.get_hookcallers(obj) or ()
            if not caller.has_spec()
            and any(
                impl.plugin_name == name and not impl.optionalhook
                for impl in caller.get_hookimpls()
            )
        )
        if unknown:
            self._broken(
                name,
                source,
                f"implements unknown hook(s) {', '.join(unknown)}; known hooks: "
                + ", ".join(hookspecs.HOOK_NAMES),
            )
            return
        self._plugins[name] = PluginRecord(name, obj, source, distribution, version)

    async def _load(
        self, builtins: Sequence[str], plugins: Sequence[tuple[str, object]], discover: bool
    ) -> None:
        for module_name in builtins:
            try:
                name = builtin_name(module_name)
            except Exception as exc:
                raise PluginError(
                    f"built-in plugin module {module_name!r} cannot be imported: "
                    f"{describe_error(exc)}"
                ) from exc
            module = importlib.import_module(module_name)
            if self._wanted(name):
                self._register(name, module, "builtin", "shopfront", shopfront_version())
        for name, obj in plugins:
            if self._wanted(name):
                self._register(name, obj, "registered", None, None)
        if discover:
            self._discover()
        named = set(self.settings.plugins_allow) | set(self.settings.plugins_deny)
        for name in sorted(named - set(self._plugins) - set(self._skipped)):
            log.warning("SHOPFRONT_PLUGINS_ALLOW/DENY name plugin %r, which does not exist", name)
        self._pm.check_pending()
        self._collect_specs()
        self._warn_unconfigured()
        await self._build()
        log.info(
            "plugins loaded: %s; strategies: %s",
            ", ".join(self._plugins) or "none",
            ", ".join(self._strategies) or "none",
        )

    def _discover(self) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if not self._wanted(ep.name):
                continue
            dist = ep.dist
            where = f"entry point {ep.name} = {ep.value}"
            if dist is not None:
                where += f" from {dist.name} {dist.version}"
            try:
                obj = ep.load()
            except Exception as exc:
                self._broken(
                    ep.name, "entry point", f"{where} failed to load: {describe_error(exc)}"
                )
                continue
            self._register(
                ep.name,
                obj,
                "entry point",
                dist.name if dist is not None else None,
                dist.version if dist is not None else None,
            )

    def _collect_specs(self) -> None:
        owners: dict[str, str] = {}
        for record in list(self._plugins.values()):
            found: list[tuple[StrategyKind, SpecType]] = []
            try:
                for hook_name, kind, spec_type in _REGISTER_HOOKS:
                    for impl in self._impls(hook_name, record.name):
                        found.extend((kind, s) for s in self._specs_of(impl, spec_type))
            except PluginError as exc:
                self._broken(record, record.source, str(exc))
                continue
            seen: set[str] = set()
            for _, spec in found:
                if spec.name in seen:
                    raise PluginError(
                        f"strategy name {spec.name!r} is registered twice by plugin {record.name!r}"
                    )
                seen.add(spec.name)
                if spec.name in owners:
                    raise PluginError(
                        f"strategy name {spec.name!r} is registered by plugin "
                        f"{owners[spec.name]!r} and by plugin {record.name!r}; "
                        "deny one of them or rename the strategy"
                    )
            # Managed promotion types are built per stored promotion (shopfront.offers.promotions),
            # not once at start-up: the host only runs the strategies built here.
            # The host hands them to the promotion book (`managed_promotion_types`).
            managed = [s for _, s in found if isinstance(s, PromotionSpec) and s.managed]
            self._managed_promotions.extend(managed)
            found = [(kind, spec) for kind, spec in found if spec not in managed]
            for kind, spec in found:
                owners[spec.name] = record.name
                config = resolve_strategy_config(
                    plugin=record.name,
                    strategy=spec.name,
                    defaults=spec.default_config,
                    secrets=spec.secrets,
                    section=self.config.strategies.get(spec.name),
                    settings=self.settings,
                    environ=self._environ,
                    config_type=spec.config_type,
                )
                self._strategies[spec.name] = Strategy(
                    kind=kind,
                    name=spec.name,
                    plugin=record,
                    spec=spec,
                    config=config,
                    breaker=CircuitBreaker(
                        config.breaker_failures, config.breaker_cooldown_ms / 1000, self._clock
                    ),
                )

    def _specs_of(self, impl: pluggy.HookImpl, spec_type: type[SpecType]) -> list[SpecType]:
        try:
            result = impl.function()
        except Exception as exc:
            raise PluginError(f"{impl.function.__name__} raised {describe_error(exc)}") from exc
        return checked_specs(impl.function.__name__, result, spec_type)

    def _warn_unconfigured(self) -> None:
        for name in sorted(set(self.config.strategies) - set(self._strategies)):
            log.warning(
                "%s: [strategies.%s] configures a strategy that is not loaded",
                self.config.source,
                name,
            )
        for name in sorted(set(self.config.plugins) - set(self._plugins)):
            log.warning(
                "%s: [plugins.%s] configures a plugin that is not loaded", self.config.source, name
            )

    async def _build(self) -> None:
        startup_s = self.settings.plugin_startup_timeout_ms / 1000
        for record in list(self._plugins.values()):
            values, shown = resolve_plugin_config(
                record.name, self.config.plugins.get(record.name), self._environ
            )
            record.config, record.config_shown = MappingProxyType(values), shown
            mine = [s for s in self._strategies.values() if s.plugin is record]
            needs_loop = bool(mine) or any(self._impls(h, record.name) for h in _LOOP_HOOKS)
            if not needs_loop:
                continue
            try:
                await self._start_plugin(record, mine, startup_s)
            except PluginError as exc:
                await self._stop_plugin(record)
                self._broken(record, record.source, str(exc))

    async def _start_plugin(
        self, record: PluginRecord, strategies: list[Strategy], startup_s: float
    ) -> None:
        loop = record.loop = PluginLoop(record.name)
        uri, database = self.store.uri, self.store.db.name
        settings = self.settings
        record.store = await loop.run(lambda: Store(settings, uri, database), startup_s)
        for strategy in strategies:
            if not strategy.enabled:
                log.info("strategy %r of plugin %r is disabled", strategy.name, record.name)
                continue
            await self._build_strategy(record, strategy, startup_s)
        for impl in self._impls("startup", record.name):
            try:
                await loop.run(bind_call(impl, config=record.config), startup_s)
            except TimeoutError:
                raise PluginError(f"startup hook took longer than {startup_s:g}s") from None
            except Exception as exc:
                raise PluginError(f"startup hook raised {describe_error(exc)}") from exc

    async def _build_strategy(
        self, record: PluginRecord, strategy: Strategy, startup_s: float
    ) -> None:
        strategy.obj, strategy.terms = await self.build_object(strategy, strategy.config)

    async def build_object(
        self, strategy: Strategy, config: StrategyConfig
    ) -> tuple[Any, PromotionTerms | None]:
        """A new object for ``strategy`` built from ``config`` by its factory on the plugin's
        loop, and a promotion's terms; nothing of ``strategy`` changes. Raises `ConfigError`
        (the factory refused a value) or `PluginError`, naming the strategy."""
        record = strategy.plugin
        startup_s = self.settings.plugin_startup_timeout_ms / 1000
        if record.loop is None or record.store is None:
            raise PluginError(f"strategy {strategy.name!r}: its plugin is not running")
        setup = StrategySetup(
            name=strategy.name,
            config=MappingProxyType(dict(config.values)),
            settings=self.settings,
            store=record.store,
            log=logging.getLogger(f"shopfront.plugins.{record.name}.{strategy.name}"),
            declared=config.declared,
        )
        factory = strategy.spec.factory
        try:
            obj: Any = await record.loop.run(lambda: factory(setup), startup_s)
        except TimeoutError:
            raise PluginError(
                f"strategy {strategy.name!r}: factory took longer than {startup_s:g}s"
            ) from None
        except ConfigError as exc:  # the factory refused a config value: always fatal
            raise ConfigError(
                f"plugin {record.name!r}, strategy {strategy.name!r}: [strategies."
                f"{strategy.name}] {exc}"
            ) from exc
        except Exception as exc:
            raise PluginError(
                f"strategy {strategy.name!r}: factory raised {describe_error(exc)}"
            ) from exc
        protocol = _PROTOCOLS[strategy.kind]
        if not isinstance(obj, protocol):  # checks the protocol's methods exist
            raise PluginError(
                f"strategy {strategy.name!r}: factory returned {type(obj).__name__}, which is "
                f"not a {protocol.__name__}"
            )
        if strategy.kind is StrategyKind.RECOMMENDER:
            problem = training_problem(obj)
            if problem is not None:
                raise PluginError(f"recommender {strategy.name!r}: {problem}")
        if strategy.kind is not StrategyKind.PROMOTION:
            return obj, None
        try:
            promotion: Any = obj
            terms = await record.loop.run(lambda: promotion.terms, startup_s)
        except Exception as exc:
            raise PluginError(
                f"promotion {strategy.name!r}: reading terms raised {describe_error(exc)}"
            ) from exc
        if not isinstance(terms, PromotionTerms):
            raise PluginError(
                f"promotion {strategy.name!r}: terms must be PromotionTerms, "
                f"got {type(terms).__name__}"
            )
        return obj, terms

    def resolve_config(self, strategy: Strategy, config: ConfigFile) -> StrategyConfig:
        """``strategy``'s configuration as ``config`` would give it (validated, not applied)."""
        spec = strategy.spec
        return resolve_strategy_config(
            plugin=strategy.plugin.name,
            strategy=strategy.name,
            defaults=spec.default_config,
            secrets=spec.secrets,
            section=config.strategies.get(strategy.name),
            settings=self.settings,
            environ=self._environ,
            config_type=spec.config_type,
        )

    async def _stop_plugin(self, record: PluginRecord) -> None:
        timeout_s = 5.0
        if record.loop is not None and record.store is not None:
            plugin_store = record.store
            try:
                await record.loop.run(plugin_store.close, timeout_s)
            except Exception as exc:
                log.warning("plugin %r: closing its store failed: %s", record.name, exc)
        if record.loop is not None:
            await record.loop.close(timeout_s)
        record.store = None
        record.loop = None

    async def close(self) -> None:
        """Stop every plugin loop (and its store). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(self._stop_plugin(r) for r in self._plugins.values()))

    # -- lookups ---------------------------------------------------------------------------

    def _impls(self, hook_name: str, plugin: str | None = None) -> list[pluggy.HookImpl]:
        """A hook's implementations in pluggy's call order, without wrappers."""
        caller: pluggy.HookCaller = getattr(self._pm.hook, hook_name)
        impls = [
            impl
            for impl in reversed(caller.get_hookimpls())
            if not (impl.hookwrapper or impl.wrapper)
        ]
        if plugin is not None:
            impls = [impl for impl in impls if impl.plugin_name == plugin]
        return impls

    @property
    def plugin_names(self) -> tuple[str, ...]:
        return tuple(self._plugins)

    @property
    def skipped(self) -> Mapping[str, str]:
        """Plugins not loaded, and why (denied, not allowed, or the error)."""
        return MappingProxyType(self._skipped)

    def managed_promotion_types(self) -> list[PromotionSpec]:
        """Promotion types (``PromotionSpec.managed``) the loaded plugins register: merchants
        create promotions of these types through the API (`shopfront.offers.promotions`)."""
        return list(self._managed_promotions)

    def strategy(self, name: str) -> Strategy | None:
        return self._strategies.get(name)

    def strategies(self, kind: StrategyKind | None = None) -> list[Strategy]:
        return [s for s in self._strategies.values() if kind is None or s.kind is kind]

    def unavailable(self, name: str, kind: StrategyKind) -> Degradation | None:
        """Why ``name`` cannot be called as a ``kind`` (not loaded, disabled), or None."""
        strategy = self._strategies.get(name)
        if strategy is None or strategy.kind is not kind:
            return Degradation(name, "not loaded")
        if strategy.obj is None:
            return Degradation(name, "disabled")
        return None

    def coupon_strategies(self) -> list[Strategy]:
        return [s for s in self.strategies(StrategyKind.COUPON) if s.obj is not None]

    def promotions(self) -> list[HostedPromotion]:
        """Enabled promotions in chain order: by ``terms.priority``, then name."""
        hosted = [
            HostedPromotion(s, s.terms)
            for s in self.strategies(StrategyKind.PROMOTION)
            if s.obj is not None and s.terms is not None
        ]
        return sorted(hosted, key=lambda h: (h.terms.priority, h.terms.name))

    # -- strategy calls --------------------------------------------------------------------

    def add_observer(self, observer: Callable[[CallObservation], None]) -> None:
        """Call ``observer`` after every strategy call (metrics); its errors are logged."""
        self._observers.append(observer)

    def _observe(self, strategy: Strategy, outcome: Any, seconds: float) -> None:
        if not self._observers:
            return
        event = CallObservation(
            strategy.plugin.name, strategy.name, strategy.kind, outcome, seconds
        )
        for observer in self._observers:
            try:
                observer(event)
            except Exception:
                log.exception("plugin call observer failed")

    async def _call(
        self, strategy: Strategy, fn: Callable[[], Any], validate: Callable[[Any], T]
    ) -> CallResult[T]:
        name, plugin = strategy.name, strategy.plugin
        health = strategy.health
        if plugin.loop is None or not strategy.breaker.allow():
            health.short_circuited += 1
            self._observe(strategy, "short_circuit", 0.0)
            return CallResult(None, Degradation(name, "circuit open"))
        health.calls += 1
        started = time.perf_counter()
        outcome: Literal["error", "invalid", "timeout"]
        try:
            raw = await plugin.loop.run(fn, strategy.timeout_s)
            value = validate(raw)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is None or current.cancelling():
                strategy.breaker.abandon()
                raise
            # Not this call being cancelled but something it awaited (a shared read cut off
            # elsewhere): the part is missing, the request goes on without it.
            health.failures += 1
            outcome, reason = "error", "error: cancelled"
            log.warning(
                "strategy %r of plugin %r: its awaited work was cancelled", name, plugin.name
            )
        except TimeoutError:
            health.timeouts += 1
            outcome, reason = "timeout", f"timeout after {strategy.config.timeout_ms} ms"
            plugin.loop.watch()
            log.warning("strategy %r of plugin %r: %s", name, plugin.name, reason)
        except OutputError as exc:
            health.failures += 1
            outcome, reason = "invalid", f"invalid output: {exc}"
            log.warning("strategy %r of plugin %r: %s", name, plugin.name, reason)
        except Exception as exc:
            health.failures += 1
            outcome, reason = "error", f"error: {type(exc).__name__}"
            log.warning(
                "strategy %r of plugin %r raised %s",
                name,
                plugin.name,
                describe_error(exc),
                exc_info=exc,
            )
        else:
            strategy.breaker.success()
            self._observe(strategy, "ok", time.perf_counter() - started)
            return CallResult(value)
        health.last_error = reason
        if strategy.breaker.failure():
            log.warning(
                "strategy %r of plugin %r: circuit breaker opened after %d consecutive failures; "
                "retrying in %.1fs",
                name,
                plugin.name,
                strategy.breaker.consecutive_failures,
                strategy.breaker.cooldown_s,
            )
        self._observe(strategy, outcome, time.perf_counter() - started)
        return CallResult(None, Degradation(name, reason, outcome))

    async def recommend(
        self, name: str, ctx: RequestContext, slot: Slot
    ) -> CallResult[tuple[Candidate, ...]]:
        """Candidates from recommender ``name`` for ``slot`` (validated, at most
        `plugin_isolation.MAX_CANDIDATES`), or the reason there are none."""
        problem = self.unavailable(name, StrategyKind.RECOMMENDER)
        if problem is not None:
            return CallResult(None, problem)
        strategy = self._strategies[name]
        recommender = strategy.obj
        fallback = Reason("RECOMMENDED", strategy.spec.description, name)
        return await self._call(
            strategy,
            lambda: recommender.recommend(ctx, slot),
            lambda raw: validate_candidates(raw, name, fallback),
        )

    async def coupon_offers(
        self, name: str, ctx: RequestContext
    ) -> CallResult[tuple[CouponOffer, ...]]:
        problem = self.unavailable(name, StrategyKind.COUPON)
        if problem is not None:
            return CallResult(None, problem)
        strategy = self._strategies[name]
        coupons = strategy.obj
        return await self._call(
            strategy, lambda: coupons.offers(ctx), lambda raw: validate_offers(raw, name)
        )

    async def apply_promotion(
        self,
        promotion: HostedPromotion,
        ctx: RequestContext,
        cart: PricedCart,
        priced_so_far: PricedCart,
    ) -> CallResult[PromotionOutcome]:
        """One step of the pricing chain; a failure gives no outcome (no discount)."""
        strategy = promotion.strategy
        obj = strategy.obj
        return await self._call(
            strategy, lambda: obj.apply(ctx, cart, priced_so_far), validate_outcome
        )

    async def run_on_strategy(
        self, name: str, work: Callable[[Any], Any], timeout_s: float | None = None
    ) -> Any:
        """Run ``work(strategy_object)`` on the strategy's plugin loop (no breaker; errors
        propagate). For jobs outside a request, such as training."""
        strategy = self._strategies.get(name)
        if strategy is None or strategy.obj is None or strategy.plugin.loop is None:
            raise KeyError(f"strategy {name!r} is not loaded")
        obj = strategy.obj
        return await strategy.plugin.loop.run(lambda: work(obj), timeout_s)

    async def fit(self, name: str, data: TrainingData, timeout_s: float | None = None) -> bool:
        """Train recommender ``name`` on its own loop; False when it is not trainable."""
        strategy = self._strategies.get(name)
        if strategy is None or not isinstance(strategy.obj, Trainable):
            return False
        await self.run_on_strategy(name, lambda r: r.fit(data), timeout_s)
        return True

    # -- policy hooks ----------------------------------------------------------------------

    def _first_result(
        self, hook_name: str, kwargs: Mapping[str, Any], validate: Callable[[Any], T]
    ) -> tuple[T | None, list[Degradation]]:
        return first_result(self._impls(hook_name), self._plugins, hook_name, kwargs, validate)

    def call_blend(
        self,
        ctx: RequestContext,
        slot: Slot,
        candidates: Mapping[str, Sequence[Candidate]],
        products: Mapping[str, Product],
    ) -> tuple[tuple[Candidate, ...] | None, list[Degradation]]:
        """The first ``blend_candidates`` answer (validated), or None when no plugin answers."""
        fallback = Reason("RECOMMENDED", slot.title, "")
        return self._first_result(
            "blend_candidates",
            {"ctx": ctx, "slot": slot, "candidates": candidates, "products": products},
            lambda raw: validate_candidates(raw, "", fallback),
        )

    def choose_offers(
        self, ctx: RequestContext, offers: Sequence[CouponOffer]
    ) -> tuple[tuple[CouponOffer, ...] | None, list[Degradation]]:
        """The first ``choose_coupon_offers`` answer; it may only pick among ``offers``."""
        return self._first_result(
            "choose_coupon_offers", {"ctx": ctx, "offers": offers}, chosen_offers_check(offers)
        )

    def stacking_plan(
        self, ctx: RequestContext, cart: PricedCart, promotions: Sequence[PromotionTerms]
    ) -> tuple[StackingPlan | None, list[Degradation]]:
        """The first ``promotion_stacking`` answer naming only the given promotions."""
        return self._first_result(
            "promotion_stacking",
            {"ctx": ctx, "cart": cart, "promotions": promotions},
            stacking_plan_check(promotions),
        )

    # -- event hooks -----------------------------------------------------------------------

    async def _each_on_loop(
        self, hook_name: str, kwargs: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        records = [
            (impl, self._plugins[impl.plugin_name])
            for impl in self._impls(hook_name)
            if impl.plugin_name in self._plugins
        ]
        return await each_on_loop(records, hook_name, kwargs, self.settings.plugin_hook_timeout_ms)

    async def emit_event(self, event: Mapping[str, Any]) -> dict[str, str]:
        """Give a stored event to every ``on_event`` implementation (concurrently, each on its
        plugin's loop under ``plugin_hook_timeout_ms``). Failures are logged and returned by
        plugin name; they never fail ingestion."""
        if not self._impls("on_event"):
            return {}
        frozen = MappingProxyType(dict(event))
        _, failures = await self._each_on_loop("on_event", {"event": frozen})
        return failures

    async def erase_user(self, user_id: str, session_ids: Sequence[str] = ()) -> dict[str, int]:
        """Ask every plugin to forget ``user_id`` and their ``session_ids``: records deleted,
        by plugin. Raises `PluginEraseError` (carrying the others' counts) when any plugin
        failed or answered with something other than a count."""
        kwargs = {"user_id": user_id, "session_ids": tuple(session_ids)}
        return erased_counts(*await self._each_on_loop("on_user_erased", kwargs))

    async def export_user(self, user_id: str, session_ids: Sequence[str] = ()) -> PluginExport:
        """What each plugin's ``export_user_data`` says it keeps, and which plugins failed."""
        kwargs = {"user_id": user_id, "session_ids": tuple(session_ids)}
        return exported(*await self._each_on_loop("export_user_data", kwargs))

    # -- reporting -------------------------------------------------------------------------

    def report(self) -> list[PluginReport]:
        """Every loaded plugin with its hooks, strategies, config (secrets hidden) and health."""
        reports = []
        for record in self._plugins.values():
            hooks = tuple(
                sorted(c.name for c in self._pm.get_hookcallers(record.obj) or () if c.has_spec())
            )
            strategies = tuple(
                StrategyReport(
                    kind=s.kind,
                    name=s.name,
                    description=s.spec.description,
                    enabled=s.obj is not None,
                    personalized=s.personalized,
                    timeout_ms=s.config.timeout_ms,
                    config=dict(s.config.shown),
                    health=health_snapshot(s),
                    settings=spec_settings(s.spec),
                )
                for s in self._strategies.values()
                if s.plugin is record
            )
            reports.append(
                PluginReport(
                    name=record.name,
                    source=record.source,
                    distribution=record.distribution,
                    version=record.version,
                    hooks=hooks,
                    config=dict(record.config_shown),
                    strategies=strategies,
                    policy_calls=dict(record.policy_calls),
                    policy_failures=dict(record.policy_failures),
                )
            )
        return reports

    def health(self, name: str) -> HealthSnapshot:
        return health_snapshot(self._strategies[name])
