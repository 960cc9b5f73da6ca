"""The merchant's view of the loaded plugins: versions, hooks, strategies, config, health."""

from __future__ import annotations

from typing import Any

import strawberry
from shopfront.extend import records
from shopfront.extend.isolation import BreakerState as BreakerStateModel
from shopfront.schema.context import Context
from shopfront.schema.errors import UNAVAILABLE, user_error
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


@strawberry.type(description="A recommender, coupon strategy or promotion a plugin provides.")
class PluginStrategy:
    kind: StrategyKind  # type: ignore[valid-type]
    name: str
    description: str
    enabled: bool
    personalized: bool
    timeout_ms: int
    config: JSON = strawberry.field(description="Effective config; secrets show as ***.")
    health: StrategyHealth


@strawberry.type(description="A loaded plugin.")
class Plugin:
    name: str
    source: str = strawberry.field(description="builtin, entry point, or registered.")
    distribution: str | None
    version: str | None
    hooks: list[str]
    config: JSON = strawberry.field(description="Start-up config; secrets show as ***.")
    strategies: list[PluginStrategy]

    @classmethod
    def of(cls, r: records.PluginReport) -> Plugin:
        return cls(
            name=r.name,
            source=r.source,
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


@strawberry.type
class PluginsQuery:
    @merchant_field(description="Loaded plugins with their strategies, config and health.")
    def plugins(self, info: Info[Context, Any]) -> list[Plugin]:
        host = info.context.runtime.plugins
        if host is None:
            raise user_error("the plugin host is not running", code=UNAVAILABLE)
        return [Plugin.of(r) for r in host.report()]
