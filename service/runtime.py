"""The running service: its typed parts, and how the app's lifespan starts and stops them.

`Runtime` is what every request is handed. `start_components` / `stop_components` and
`start_experiments` / `stop_experiments` are the start-up and shut-down steps the lifespan
runs (domain modules never start anything themselves).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from shopfront.catalog.snapshot import CatalogSnapshot
from shopfront.experiments.assignment import ExperimentRegistry
from shopfront.experiments.definitions import KnownStrategies
from shopfront.experiments.exposure import ExposureRecorder
from shopfront.extend.config import ConfigFile
from shopfront.extend.host import PluginHost
from shopfront.extend.records import CallObservation, StrategyKind
from shopfront.extend.reload import ConfigFollower, ReloadError
from shopfront.offers.campaigns import CAMPAIGNS, CODES
from shopfront.offers.coupon_service import CouponService
from shopfront.offers.pricing import CartPricer
from shopfront.offers.promotions import PromotionBook, PromotionTypes, build_cart_pricer
from shopfront.platform.admission import AdmissionGate
from shopfront.platform.batch_writer import BatchWriter
from shopfront.platform.config import Settings
from shopfront.platform.health import HealthMonitor
from shopfront.platform.keycache import KeyCache
from shopfront.platform.metrics import Metrics
from shopfront.platform.money import Money
from shopfront.platform.ratelimit import RateLimiter
from shopfront.platform.store import Store
from shopfront.platform.watched import WatchedCollection
from shopfront.recommend.models import ModelRegistry
from shopfront.recommend.training import scheduled_training
from shopfront.shoppers.erased import ErasedIds
from shopfront.shoppers.events import EventHooks
from shopfront.shoppers.identity import ShopperTokens
from shopfront.shoppers.privacy import PluginExport, PrivacyHooks
from shopfront.shoppers.profile_view import Profile
from shopfront.storefront.composer import Storefront
from shopfront.storefront.slots import configured_slots
from shopfront.storefront.sources import FunctionProfileSource, ProfileSource

ProfileLoader = Callable[[str, datetime], Awaitable[Profile | None]]


class Closable(Protocol):
    """Something holding pending writes that shutdown flushes (`app.close_components`)."""

    def aclose(self) -> Awaitable[None]: ...


@dataclass
class Runtime:
    """The running service's parts, typed. The app's lifespan builds it (`start_components`,
    `start_experiments`) and tears it down (`stop_experiments`, `stop_components`); domain
    modules are handed the one part they need, never the runtime.

    Fields that stay None were not started (a runtime built by a unit test)."""

    settings: Settings
    store: Store
    metrics: Metrics | None = None
    limiter: RateLimiter | None = None
    key_cache: KeyCache | None = None
    # API keys in memory (by key hash), current on every instance: no lookup per request.
    api_keys: WatchedCollection | None = None
    health: HealthMonitor | None = None
    ingestion: AdmissionGate | None = None
    catalog: CatalogSnapshot | None = None
    plugins: PluginHost | None = None
    storefront: Storefront | None = None
    # Served slots, exposures and assignments are written through it, off the request path.
    writer: BatchWriter | None = None
    models: ModelRegistry | None = None
    experiments: ExperimentRegistry | None = None
    exposures: ExposureRecorder | None = None
    # Strategy names experiment definitions are checked against; None skips the check.
    known_strategies: KnownStrategies | None = None
    # Coupon validation and redemption read segment data through it; None: no profiles.
    profile_loader: ProfileLoader | None = None
    # Erased shoppers' ids in memory: every write path refuses them without a read.
    erased: ErasedIds | None = None
    # Follows the plugin configuration published in the database (`shopfront plugins reload`).
    plugin_config: ConfigFollower | None = None
    # Shopper-token signer and verifier, made from the settings on first use.
    shopper_tokens: ShopperTokens | None = None
    event_hooks: EventHooks = field(default_factory=EventHooks)
    privacy_hooks: PrivacyHooks = field(default_factory=PrivacyHooks)
    # Flushed newest first on shutdown, within the drain budget.
    closables: list[Closable] = field(default_factory=list)
    draining: bool = False
    # Built from the settings; `start_components` adds the plugins' promotion types.
    coupons: CouponService = field(init=False)
    promotion_book: PromotionBook = field(init=False)
    pricer: CartPricer = field(init=False)

    def __post_init__(self) -> None:
        self.coupons = CouponService(self.store, self.settings)
        self.promotion_book = PromotionBook(self.store, self.settings, PromotionTypes.builtin())
        self.pricer = build_cart_pricer(
            self.store, self.settings, self.promotion_book, self.coupons
        )


# -- lifecycle -----------------------------------------------------------------------------


async def start_components(
    runtime: Runtime,
    *,
    plugins: Sequence[tuple[str, object]] = (),
    plugin_config: ConfigFile | None = None,
    profiles: ProfileSource | None = None,
) -> None:
    """Start the plugin host, the storefront composer and the model registry into
    ``runtime.plugins``, ``.storefront`` and ``.models``."""
    from shopfront.shoppers.profiles import load_profile

    erased = ErasedIds(runtime.store, refresh_seconds=runtime.settings.tombstone_refresh_seconds)
    await erased.start()
    runtime.erased = erased
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
    runtime.plugins = host
    runtime.storefront = composer
    # Drained on shutdown by `app.close_components`, after the composer handed it the rest.
    writer = BatchWriter(runtime.store, metrics=runtime.metrics)
    runtime.writer = composer.served.writer = writer
    runtime.closables.append(writer)
    # The catalog and the API keys in memory, current on every instance (change streams,
    # or polling where the server has none).
    snapshot = CatalogSnapshot(runtime.store)
    await snapshot.start()
    runtime.catalog = composer.catalog = snapshot
    keys = WatchedCollection(runtime.store, "api_keys", index_by="key_hash")
    await keys.start()
    runtime.api_keys = keys
    # Campaigns and shared codes: validating an entered code reads neither per request.
    campaigns = WatchedCollection(runtime.store, CAMPAIGNS)
    shared = WatchedCollection(runtime.store, CODES, index_by="code", match={"kind": "shared"})
    await campaigns.start()
    await shared.start()
    runtime.coupons.known_campaigns, runtime.coupons.shared_codes = campaigns, shared

    _observe_strategies(runtime, host)

    # Trained models: every instance loads the active version and follows activations.
    registry = ModelRegistry(runtime.store, runtime.settings, runtime.metrics)
    for hosted in host.strategies(StrategyKind.RECOMMENDER):
        if hosted.obj is not None:
            registry.attach(hosted.name, hosted.obj)
    # Scheduled training tunes the configured slots; every request serves the loaded tuning.
    registry.slots = tuple(configured_slots(composer.slots))
    composer.tuning = lambda: registry.tuning
    await registry.start()
    if runtime.settings.training_interval_minutes > 0:  # in-service retraining, lease-locked
        registry.keep(asyncio.create_task(scheduled_training(registry), name="models-training"))
    runtime.models = registry

    # Stored promotions may be of the built-in types or of a type a loaded plugin registers.
    builtin_types = PromotionTypes.builtin()
    extra = [s for s in host.managed_promotion_types() if s.name not in builtin_types.names]
    runtime.promotion_book = PromotionBook(
        runtime.store,
        runtime.settings,
        PromotionTypes([*(builtin_types.get(n) for n in builtin_types.names), *extra]),
    )

    # The engine's shipping fees come from the settings; a [shipping] table in the config
    # file overrides them per currency.
    pricer = build_cart_pricer(
        runtime.store, runtime.settings, runtime.promotion_book, runtime.coupons, snapshot
    )
    runtime.pricer = pricer
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
    runtime.plugin_config = follower

    # Plugins hear about stored events and erasures through their hooks.
    async def plugins_on_event(event: Mapping[str, Any]) -> None:
        await host.emit_event(event)

    async def plugin_state(user_id: str, sessions: Sequence[str]) -> int:
        return sum((await host.erase_user(user_id, sessions)).values())

    async def plugin_export(user_id: str, sessions: Sequence[str]) -> PluginExport:
        return await host.export_user(user_id, sessions)

    async def profile_loader(user_id: str, now: datetime) -> Profile | None:
        return await load_profile(runtime.store, user_id, now)

    if runtime.profile_loader is None:
        runtime.profile_loader = profile_loader
    runtime.event_hooks.listeners.append(plugins_on_event)
    runtime.privacy_hooks.erasers.append(plugin_state)
    runtime.privacy_hooks.exporters.append(plugin_export)


def _observe_strategies(runtime: Runtime, host: PluginHost) -> None:
    """Feed every strategy call and breaker state into the Prometheus metrics, so /metrics
    and the `plugins` query tell the same story."""
    from shopfront.platform.metrics import BreakerState as MetricState

    metrics = runtime.metrics
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
    follower, runtime.plugin_config = runtime.plugin_config, None
    if follower is not None:
        await follower.stop()

    registry, runtime.models = runtime.models, None
    if registry is not None:
        await registry.stop()
    composer, runtime.storefront = runtime.storefront, None
    if composer is not None:
        await composer.close()
    snapshot, runtime.catalog = runtime.catalog, None
    if snapshot is not None:
        await snapshot.close()
    keys, runtime.api_keys = runtime.api_keys, None
    if keys is not None:
        await keys.close()
    for watched in (runtime.coupons.known_campaigns, runtime.coupons.shared_codes):
        if watched is not None:
            await watched.close()
    runtime.coupons.known_campaigns = runtime.coupons.shared_codes = None
    host, runtime.plugins = runtime.plugins, None
    if host is not None:
        await host.close()
    erased, runtime.erased = runtime.erased, None
    if erased is not None:
        await erased.close()


# -- wiring --------------------------------------------------------------------------------


async def start_experiments(runtime: Runtime) -> ExperimentRegistry:
    """Build this process's `ExperimentRegistry` (loaded, then polling every
    ``SHOPFRONT_EXPERIMENT_REFRESH_SECONDS``) and `ExposureRecorder` (at
    ``SHOPFRONT_EXPOSURE_SAMPLE_RATE``) into ``runtime.experiments`` and
    ``runtime.exposures``. Call it from the app's
    lifespan after the store opens; `stop_experiments` on shutdown."""
    settings = runtime.settings
    registry = ExperimentRegistry(
        runtime.store, refresh_seconds=settings.experiment_refresh_seconds
    )
    await registry.start()
    runtime.experiments = registry
    runtime.exposures = ExposureRecorder(
        runtime.store, sample_rate=settings.exposure_sample_rate, writer=runtime.writer
    )
    return registry


async def stop_experiments(runtime: Runtime) -> None:
    registry, runtime.experiments = runtime.experiments, None
    runtime.exposures = None
    if registry is not None:
        await registry.close()


async def reload_plugin_config(runtime: Runtime) -> int:
    """Re-read ``SHOPFRONT_CONFIG``, validate it against this instance's plugins, publish it
    for every instance and apply it here (SIGHUP to `shopfront serve` runs this): its version.
    Raises `ReloadError` with the reason when the file is refused (nothing changes)."""
    follower = runtime.plugin_config
    if follower is None:
        raise ReloadError("the plugin host is not running")
    path = runtime.settings.config_file
    if path is None:
        raise ReloadError("SHOPFRONT_CONFIG is not set: there is no config file to reload")
    return await follower.reload_file(path)
