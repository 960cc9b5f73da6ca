"""What plugins see and return: the typed values and the strategy protocols.

This is the merchant-facing contract (with `shopfront.extend.hookspecs`). Built-in plugins use
nothing
else. Values are frozen dataclasses so one request's context can be shared by strategies that
run concurrently; strategies never mutate what they are given.

Since version 0.1.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from shopfront.catalog.products import Product

if TYPE_CHECKING:
    from shopfront.recommend.interactions import Interactions
from shopfront.platform.strategy_setup import StrategySetup
from shopfront.shoppers.context import RequestContext

# -- recommendations -----------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    """Why an item or offer is shown: a machine code, text a shopper can read, its source.

    Strategies may leave ``strategy`` empty; the host fills in the strategy's name.
    """

    code: str
    text: str
    strategy: str = ""


@dataclass(frozen=True)
class Candidate:
    """A product a recommender proposes, with a strategy-specific score (higher is better)."""

    product_id: str
    score: float
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True)
class SlotFilter:
    category_path: tuple[str, ...] | None = None
    min_price: int | None = None  # minor units, in the request currency
    max_price: int | None = None


@dataclass(frozen=True)
class Slot:
    """One recommendation slot of the page: which strategies fill it, with which weights."""

    name: str
    title: str
    strategies: tuple[str, ...]
    limit: int = 10
    weights: Mapping[str, float] = field(default_factory=dict)
    filters: SlotFilter = field(default_factory=SlotFilter)
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingData:
    """What `Recommender.fit` learns from: the catalog and the behaviour events of a window.

    ``events`` are stored event documents (see `shopfront.shoppers.events`), oldest first.
    """

    products: Sequence[Product]
    events: Sequence[Mapping[str, Any]]
    window_start: datetime
    window_end: datetime
    progress: Callable[[str, float], None] | None = None  # (stage, fraction done)

    @cached_property
    def interactions(self) -> Interactions:
        """The events as numpy columns (`shopfront.recommend.interactions`), product index =
        catalog order.

        `shopfront train` passes an `Interactions` as ``events`` (a million events as dicts
        would not fit the memory budget); plain event documents are converted once, here.
        """
        from shopfront.recommend.interactions import Interactions

        if isinstance(self.events, Interactions):
            return self.events
        return Interactions.from_events(self.events, [p.id for p in self.products])

    @cached_property
    def product_index(self) -> Mapping[str, int]:
        """Product id -> its position in ``products`` (and its item index in interactions)."""
        return {p.id: i for i, p in enumerate(self.products)}

    def report(self, stage: str, fraction: float) -> None:
        """Tell the trainer's progress bar how far ``stage`` is (0.0 to 1.0)."""
        if self.progress is not None:
            self.progress(stage, min(1.0, max(0.0, fraction)))


@runtime_checkable
class Recommender(Protocol):
    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        """Candidates for ``slot``, best first. Keep it bounded: no pass over the catalog."""
        ...


@runtime_checkable
class Trainable(Protocol):
    async def fit(self, data: TrainingData) -> None:
        """Learn from ``data``; `shopfront train` calls it. Optional for a recommender."""
        ...


@dataclass(frozen=True)
class RecommenderSpec:
    name: str
    factory: Callable[[StrategySetup], Recommender | Awaitable[Recommender]]
    description: str
    default_config: Mapping[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()  # config keys hidden in the `plugins` query
    personalized: bool = True  # False: safe for shoppers without personalization consent
    # The declared settings, a dataclass (see `shopfront.platform.config_schema`), instead of
    # ``default_config`` (which checks values only against the defaults' types).
    config_type: type[Any] | None = None
