"""What the plugin host keeps about each plugin and strategy: records, health, reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from shopfront.extend.config import (
    StrategyConfig,
)
from shopfront.extend.isolation import (
    BreakerState,
    CircuitBreaker,
    PluginLoop,
)
from shopfront.offers.contract import (
    CouponStrategySpec,
    PricedCart,
    PromotionOutcome,
    PromotionSpec,
    PromotionTerms,
)
from shopfront.platform.config_schema import SettingInfo
from shopfront.platform.store import Store
from shopfront.recommend.contract import (
    RecommenderSpec,
)
from shopfront.shoppers.context import RequestContext

T = TypeVar("T")

PluginSource = Literal["builtin", "registered", "entry point"]


class PluginError(RuntimeError):
    """Plugins cannot start as configured; the message names the plugin."""


class PluginEraseError(RuntimeError):
    """Some plugins could not forget a shopper. ``deleted`` holds what the others removed."""

    def __init__(self, failures: Mapping[str, str], deleted: Mapping[str, int]) -> None:
        super().__init__(
            "plugins failed to erase the shopper: "
            + "; ".join(f"{p}: {why}" for p, why in sorted(failures.items()))
        )
        self.failures = dict(failures)
        self.deleted = dict(deleted)


class StrategyKind(StrEnum):
    RECOMMENDER = "recommender"
    COUPON = "coupon"
    PROMOTION = "promotion"


@dataclass(frozen=True)
class Degradation:
    """Something left out of one response: the strategy (or policy hook) and why.

    ``reason`` is for people (``timeout after 200 ms``, ``error: KeyError``); ``cause`` is its
    fixed kind for metrics (``timeout``, ``error``, ``invalid``); empty when the reason is
    itself fixed (``not loaded``, ``disabled``, ``circuit open``). See `kind`.
    """

    strategy: str
    reason: str
    cause: str = field(default="", compare=False)

    @property
    def kind(self) -> str:
        """The reason's fixed kind: ``cause``, or the reason when it has no details."""
        return self.cause or self.reason


@dataclass(frozen=True)
class CallResult(Generic[T]):
    """A strategy call's validated value, or the reason it has none."""

    value: T | None
    problem: Degradation | None = None


@dataclass(frozen=True)
class CallObservation:
    """One strategy call, for metrics observers (`PluginHost.add_observer`)."""

    plugin: str
    strategy: str
    kind: StrategyKind
    outcome: Literal["ok", "error", "invalid", "timeout", "short_circuit"]
    seconds: float


@dataclass
class StrategyHealth:
    calls: int = 0
    failures: int = 0  # exceptions and invalid output
    timeouts: int = 0
    short_circuited: int = 0
    last_error: str | None = None


@dataclass
class PluginRecord:
    name: str
    obj: Any
    source: PluginSource
    distribution: str | None
    version: str | None
    loop: PluginLoop | None = None
    store: Store | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    config_shown: Mapping[str, Any] = field(default_factory=dict)
    policy_calls: dict[str, int] = field(default_factory=dict)
    policy_failures: dict[str, int] = field(default_factory=dict)


@dataclass
class Strategy:
    """A registered strategy: its spec, validated config, built object, breaker and health."""

    kind: StrategyKind
    name: str
    plugin: PluginRecord
    spec: RecommenderSpec | CouponStrategySpec | PromotionSpec
    config: StrategyConfig
    breaker: CircuitBreaker
    obj: Any = None
    terms: PromotionTerms | None = None
    health: StrategyHealth = field(default_factory=StrategyHealth)

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    @property
    def personalized(self) -> bool:
        return bool(getattr(self.spec, "personalized", False))

    @property
    def timeout_s(self) -> float:
        return self.config.timeout_ms / 1000


@dataclass(frozen=True)
class HostedPromotion:
    """A promotion as the pricing chain sees it: its terms (read once at start-up) and an
    ``apply`` that the host runs on the plugin's loop under its deadline."""

    strategy: Strategy
    terms: PromotionTerms

    async def apply(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        raise RuntimeError(
            f"promotion {self.terms.name!r} runs through PluginHost.apply_promotion, "
            "which applies its deadline and breaker"
        )


@dataclass(frozen=True)
class HealthSnapshot:
    calls: int
    failures: int
    timeouts: int
    short_circuited: int
    breaker_state: BreakerState
    consecutive_failures: int
    breaker_opened: int
    last_error: str | None


@dataclass(frozen=True)
class StrategyReport:
    kind: StrategyKind
    name: str
    description: str
    enabled: bool
    personalized: bool
    timeout_ms: int
    config: Mapping[str, Any]  # secrets hidden
    health: HealthSnapshot
    settings: tuple[SettingInfo, ...] = ()  # what the strategy's config may set


@dataclass(frozen=True)
class PluginReport:
    name: str
    source: PluginSource
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]
    config: Mapping[str, Any]  # secrets hidden
    strategies: tuple[StrategyReport, ...]
    policy_calls: Mapping[str, int]
    policy_failures: Mapping[str, int]


SpecType = RecommenderSpec | CouponStrategySpec | PromotionSpec


def health_snapshot(strategy: Strategy) -> HealthSnapshot:
    h, b = strategy.health, strategy.breaker
    return HealthSnapshot(
        calls=h.calls,
        failures=h.failures,
        timeouts=h.timeouts,
        short_circuited=h.short_circuited,
        breaker_state=b.state,
        consecutive_failures=b.consecutive_failures,
        breaker_opened=b.opened,
        last_error=h.last_error,
    )
