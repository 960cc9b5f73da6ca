"""The running service: its typed parts, and how the app's lifespan starts and stops them.

`Runtime` is what every request is handed. `start_components` / `stop_components` and
`start_experiments` / `stop_experiments` are the start-up and shut-down steps the lifespan
runs (domain modules never start anything themselves).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shopfront.experiments.assignment import ExperimentRegistry
from shopfront.experiments.exposure import ExposureRecorder
from shopfront.extend.config import ConfigFile
from shopfront.extend.host import PluginHost
from shopfront.extend.records import CallObservation, StrategyKind
from shopfront.extend.reload import COMPONENT as PLUGIN_CONFIG
from shopfront.extend.reload import ConfigFollower, ReloadError
from shopfront.platform.config import Settings
from shopfront.platform.metrics import metrics_of
from shopfront.platform.money import Money
from shopfront.platform.store import Store
from shopfront.shoppers.erased import COMPONENT as ERASED_IDS
from shopfront.shoppers.erased import ErasedIds
from shopfront.shoppers.profile_view import Profile
from shopfront.storefront.composer import Storefront
from shopfront.storefront.slots import configured_slots
from shopfront.storefront.sources import FunctionProfileSource, ProfileSource


@dataclass
class Runtime:
    """What the app's lifespan opens: settings, the store, and components that later modules
    register under a name (plugin host, model registry, ...) so the app stays the only owner
    of their lifecycle."""

    settings: Settings
    store: Store
    components: dict[str, Any] = field(default_factory=dict)
    draining: bool = False


# -- lifecycle -----------------------------------------------------------------------------


async def start_components(
    runtime: Runtime,
    *,
    plugins: Sequence[tuple[str, object]] = (),
    plugin_config: ConfigFile | None = None,
    profiles: ProfileSource | None = None,
) -> None:
    """Start the plugin host and the storefront composer into ``runtime.components``
    (``"plugins"`` and ``"storefront"``)."""
    from shopfront.shoppers import events, privacy
    from shopfront.shoppers.profiles import load_profile

    erased = ErasedIds(runtime.store, refresh_seconds=runtime.settings.tombstone_refresh_seconds)
    await erased.start()
    runtime.components[ERASED_IDS] = erased
    host = await PluginHost.start(
        runtime.settings, runtime.store, plugins=plugins, config=plugin_config
    )
    try:
        composer = Storefront(
            host,
            runtime.store,
            runtime.settings,
            profiles or FunctionProfileSource(runtime.store, load_profile),
        )
    except BaseException:
        await host.close()
        await erased.close()
        raise
    composer.erased = erased
    runtime.components["plugins"] = host
    runtime.components["storefront"] = composer

    _observe_strategies(runtime, host)

    # Trained models: every instance loads the active version and follows activations.
    from shopfront.recommend.models import ModelRegistry

    registry = ModelRegistry(runtime.store, runtime.settings, metrics_of(runtime))
    for hosted in host.strategies(StrategyKind.RECOMMENDER):
        if hosted.obj is not None:
            registry.attach(hosted.name, hosted.obj)
    # Scheduled training tunes the configured slots; every request serves the loaded tuning.
    registry.slots = tuple(configured_slots(composer.slots))
    composer.tuning = lambda: registry.tuning
    await registry.start()  # also retrains on SHOPFRONT_TRAINING_INTERVAL_MINUTES, if set
    runtime.components["models"] = registry
    from shopfront.offers.promotions import PromotionBook, PromotionTypes, cart_pricer

    # Stored promotions may be of the built-in types or of a type a loaded plugin registers.
    builtin_types = PromotionTypes.builtin()
    extra = [s for s in host.managed_promotion_types() if s.name not in builtin_types.names]
    runtime.components["promotion_book"] = PromotionBook(
        runtime.store,
        runtime.settings,
        PromotionTypes([*(builtin_types.get(n) for n in builtin_types.names), *extra]),
    )

    # The engine's shipping fees come from the settings; a [shipping] table in the config
    # file overrides them per currency.
    pricer = cart_pricer(runtime)
    fees = dict(pricer.shipping_fees)
    fees.update({cur: Money(amount, cur) for cur, amount in composer.shipping.items()})
    composer.pricer = replace(pricer, shipping_fees=fees)

    # Plugin configuration published by `shopfront plugins reload` (or SIGHUP), followed by
    # every instance; a rebuilt trained recommender keeps being served model versions.
    def replaced(name: str, old: object, new: object) -> Awaitable[object] | None:
        registry.replace(name, old, new)
        if old is None and new is not None and registry.loaded is not None:
            # switched on by a reload: nothing to carry over, so load the version in force
            return registry.refresh(force=True)
        return None

    follower = ConfigFollower(
        host,
        runtime.store,
        refresh_s=runtime.settings.plugin_config_refresh_s,
        on_replaced=replaced,
    )
    await follower.start()
    runtime.components[PLUGIN_CONFIG] = follower

    # Plugins hear about stored events and erasures through their hooks.
    async def plugins_on_event(event: Mapping[str, Any]) -> None:
        await host.emit_event(event)

    async def plugin_state(user_id: str, sessions: Sequence[str]) -> int:
        return sum((await host.erase_user(user_id, sessions)).values())

    async def plugin_export(user_id: str, sessions: Sequence[str]) -> privacy.PluginExport:
        return await host.export_user(user_id, sessions)

    async def profile_loader(user_id: str, now: datetime) -> Profile | None:
        return await load_profile(runtime.store, user_id, now)

    # Coupon validation and redemption read segment data through this component.
    runtime.components.setdefault("profile_loader", profile_loader)
    events.event_hooks(runtime.components).listeners.append(plugins_on_event)
    privacy.privacy_hooks(runtime.components).erasers.append(plugin_state)
    privacy.privacy_hooks(runtime.components).exporters.append(plugin_export)


def _observe_strategies(runtime: Runtime, host: PluginHost) -> None:
    """Feed every strategy call and breaker state into the Prometheus metrics, so /metrics
    and the `plugins` query tell the same story."""
    from shopfront.platform.metrics import BreakerState as MetricState

    metrics = metrics_of(runtime)
    if metrics is None:
        return

    def observe(call: CallObservation) -> None:
        kind = call.kind.value
        if call.outcome == "short_circuit":  # the breaker is open: no call was made
            metrics.strategy_skipped.labels(kind, call.strategy).inc()
            return
        metrics.record_strategy_call(
            kind,
            call.strategy,
            call.seconds,
            failed=call.outcome in ("error", "invalid"),
            timed_out=call.outcome == "timeout",
        )
        hosted = host.strategy(call.strategy)
        if hosted is not None:
            state = MetricState[hosted.breaker.state.name]
            metrics.set_breaker_state(kind, call.strategy, state)

    host.add_observer(observe)


async def stop_components(runtime: Runtime) -> None:
    from shopfront.recommend.models import ModelRegistry

    follower = runtime.components.pop(PLUGIN_CONFIG, None)
    if isinstance(follower, ConfigFollower):
        await follower.stop()

    registry = runtime.components.pop("models", None)
    if isinstance(registry, ModelRegistry):
        await registry.stop()
    composer = runtime.components.pop("storefront", None)
    if isinstance(composer, Storefront):
        await composer.close()
    host = runtime.components.pop("plugins", None)
    if isinstance(host, PluginHost):
        await host.close()
    erased = runtime.components.pop(ERASED_IDS, None)
    if isinstance(erased, ErasedIds):
        await erased.close()


# -- wiring --------------------------------------------------------------------------------

REGISTRY_COMPONENT = "experiments"
RECORDER_COMPONENT = "exposures"


async def start_experiments(runtime: Runtime) -> ExperimentRegistry:
    """Build this process's `ExperimentRegistry` (loaded, then polling every
    ``SHOPFRONT_EXPERIMENT_REFRESH_SECONDS``) and `ExposureRecorder` (at
    ``SHOPFRONT_EXPOSURE_SAMPLE_RATE``) and register them as
    ``runtime.components["experiments"]`` and ``["exposures"]``. Call it from the app's
    lifespan after the store opens; `stop_experiments` on shutdown."""
    settings = runtime.settings
    registry = ExperimentRegistry(
        runtime.store, refresh_seconds=settings.experiment_refresh_seconds
    )
    await registry.start()
    runtime.components[REGISTRY_COMPONENT] = registry
    runtime.components[RECORDER_COMPONENT] = ExposureRecorder(
        runtime.store, sample_rate=settings.exposure_sample_rate
    )
    return registry


async def stop_experiments(runtime: Runtime) -> None:
    registry = runtime.components.pop(REGISTRY_COMPONENT, None)
    runtime.components.pop(RECORDER_COMPONENT, None)
    if isinstance(registry, ExperimentRegistry):
        await registry.close()


async def reload_plugin_config(runtime: Runtime) -> int:
    """Re-read ``SHOPFRONT_CONFIG``, validate it against this instance's plugins, publish it
    for every instance and apply it here (SIGHUP to `shopfront serve` runs this): its version.
    Raises `ReloadError` with the reason when the file is refused (nothing changes)."""
    follower = runtime.components.get(PLUGIN_CONFIG)
    if not isinstance(follower, ConfigFollower):
        raise ReloadError("the plugin host is not running")
    path = runtime.settings.config_file
    if path is None:
        raise ReloadError("SHOPFRONT_CONFIG is not set: there is no config file to reload")
    return await follower.reload_file(path)
