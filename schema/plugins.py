"""The merchant's view of the loaded plugins: versions, hooks, strategies, config, health."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from shopfront.extend import records
from shopfront.extend.isolation import BreakerState as BreakerStateModel
from shopfront.platform.config_schema import SettingInfo
from shopfront.schema.context import Context
from shopfront.schema.errors import ErrorCode, user_error
from shopfront.schema.permissions import merchant_field
from shopfront.schema.scalars import JSON
from strawberry.types import Info

BreakerState = strawberry.enum(
    BreakerStateModel,
    name="BreakerState",
    description="CLOSED: called normally; OPEN: not called until its cool-down ends; "
    "HALF_OPEN: the next call is a probe.",
)
StrategyKind = strawberry.enum(records.StrategyKind, name="StrategyKind")


@strawberry.type(description="A strategy's calls since start-up.")
class StrategyHealth:
    calls: int
    failures: int = strawberry.field(description="Exceptions and invalid output.")
    timeouts: int
    short_circuited: int = strawberry.field(description="Calls skipped by the open breaker.")
    breaker_state: BreakerState  # type: ignore[valid-type]
    consecutive_failures: int
    breaker_opened: int = strawberry.field(description="How often the breaker has opened.")
    last_error: str | None


@strawberry.type(
    description="A setting a strategy's `[strategies.<name>]` section may set (besides the "
    "host's enabled, timeout_ms, breaker_failures and breaker_cooldown_ms)."
)
class StrategySetting:
    name: str
    type: str = strawberry.field(description='As declared, e.g. "list[str]", "float".')
    required: bool
    default: JSON | None
    description: str
    min: float | None = strawberry.field(description="Lowest number allowed (each number).")
    max: float | None = strawberry.field(description="Highest number allowed (each number).")
    min_length: int | None = strawberry.field(description="Fewest characters or items.")
    max_length: int | None = strawberry.field(description="Most characters or items.")
    secret: bool = strawberry.field(description="Its value shows as *** in `config`.")

    @classmethod
    def of(cls, s: SettingInfo) -> StrategySetting:
        return cls(
            name=s.name,
            type=s.type,
            required=s.required,
            default=None if s.required else JSON(_jsonable(s.default)),
            description=s.doc,
            min=s.min,
            max=s.max,
            min_length=s.min_len,
            max_length=s.max_len,
            secret=s.secret,
        )


@strawberry.type(description="A recommender, coupon strategy or promotion a plugin provides.")
class PluginStrategy:
    kind: StrategyKind  # type: ignore[valid-type]
    name: str
    description: str
    enabled: bool
    personalized: bool
    timeout_ms: int
    config: JSON = strawberry.field(
        description="Effective config (defaults overlaid with the config file, as validated "
        "and in force now); secrets show as ***."
    )
    settings: list[StrategySetting] = strawberry.field(
        description="What `config` may hold: declared type, default, bounds, documentation."
    )
    health: StrategyHealth


@strawberry.enum(description="Where a plugin came from.")
class PluginSource(Enum):
    BUILTIN = "builtin"
    ENTRY_POINT = "entry point"
    REGISTERED = "registered"


@strawberry.type(description="A loaded plugin.")
class Plugin:
    name: str
    source: PluginSource = strawberry.field(
        description="BUILTIN: ships with Shopfront; ENTRY_POINT: an installed package's "
        "`shopfront` entry point; REGISTERED: registered in code (tests, embedding)."
    )
    distribution: str | None
    version: str | None
    hooks: list[str]
    config: JSON = strawberry.field(description="Start-up config; secrets show as ***.")
    strategies: list[PluginStrategy]

    @classmethod
    def of(cls, r: records.PluginReport) -> Plugin:
        return cls(
            name=r.name,
            source=PluginSource(r.source),
            distribution=r.distribution,
            version=r.version,
            hooks=list(r.hooks),
            config=JSON(dict(r.config)),
            strategies=[
                PluginStrategy(
                    kind=s.kind,
                    name=s.name,
                    description=s.description,
                    enabled=s.enabled,
                    personalized=s.personalized,
                    timeout_ms=s.timeout_ms,
                    config=JSON(_jsonable(s.config)),
                    settings=[StrategySetting.of(x) for x in s.settings],
                    health=StrategyHealth(
                        calls=s.health.calls,
                        failures=s.health.failures,
                        timeouts=s.health.timeouts,
                        short_circuited=s.health.short_circuited,
                        breaker_state=s.health.breaker_state,
                        consecutive_failures=s.health.consecutive_failures,
                        breaker_opened=s.health.breaker_opened,
                        last_error=s.health.last_error,
                    ),
                )
                for s in r.strategies
            ],
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


@strawberry.type(
    description="The plugin configuration this instance serves: the one it started with "
    "(version 0) or the latest published by `shopfront plugins reload` / SIGHUP."
)
class PluginConfigStatus:
    version: int
    source: str = strawberry.field(description="The config file it came from.")
    applied_at: datetime
    rejected_version: int | None = strawberry.field(
        description="The last published version this instance refused (it kept serving "
        "`version`), and why."
    )
    rejected_reason: str | None


@strawberry.type
class PluginsQuery:
    @merchant_field(description="Loaded plugins with their strategies, config and health.")
    def plugins(self, info: Info[Context, Any]) -> list[Plugin]:
        host = info.context.runtime.plugins
        if host is None:
            raise user_error("the plugin host is not running", code=ErrorCode.SERVICE_UNAVAILABLE)
        return [Plugin.of(r) for r in host.report()]

    @merchant_field(
        description="Which plugin configuration this instance serves, and the last version it "
        "refused."
    )
    def plugin_config(self, info: Info[Context, Any]) -> PluginConfigStatus:
        follower = info.context.runtime.plugin_config
        if follower is None:
            raise user_error("the plugin host is not running", ErrorCode.SERVICE_UNAVAILABLE)
        s = follower.status
        return PluginConfigStatus(
            version=s.version,
            source=s.source,
            applied_at=s.applied_at,
            rejected_version=s.rejected_version,
            rejected_reason=s.rejected_reason,
        )
