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

    code: str  # machine-readable, e.g. VIEWED_SIMILAR
    text: str  # for the shopper, e.g. "Because you viewed X"
    strategy: str = ""  # filled in by the host when empty


@dataclass(frozen=True)
class Candidate:
    """A product a recommender proposes, with a strategy-specific score (higher is better)."""

    product_id: str  # a product id of the catalog
    score: float  # finite; only the order within one strategy matters
    reasons: tuple[Reason, ...] = ()  # at least one is shown (made from the description if none)


@dataclass(frozen=True)
class SlotFilter:
    """Hard limits on a slot's items; the host applies them whatever the strategies return."""

    category_path: tuple[str, ...] | None = None  # only products under this path (CATEGORY pages)
    min_price: int | None = None  # minor units, in the request currency
    max_price: int | None = None  # minor units, in the request currency


@dataclass(frozen=True)
class Slot:
    """One recommendation slot of the page: which strategies fill it, with which weights."""

    name: str  # e.g. "recommended_for_you"
    title: str  # shown to the shopper
    strategies: tuple[str, ...]  # the strategies blended into it
    limit: int = 10  # items shown, at most 50
    weights: Mapping[str, float] = field(default_factory=dict)  # strategy name -> blend weight
    filters: SlotFilter = field(default_factory=SlotFilter)  # hard limits the host applies
    params: Mapping[str, Any] = field(default_factory=dict)  # free-form: config, experiments


@dataclass(frozen=True)
class TrainingData:
    """What `Recommender.fit` learns from: the catalog and the behaviour events of a window.

    ``events`` are stored event documents (see `shopfront.shoppers.events`), oldest first.
    """

    products: Sequence[Product]  # the catalog, in item-index order
    events: Sequence[Mapping[str, Any]]  # stored event documents (or Interactions)
    window_start: datetime  # first event time considered
    window_end: datetime  # last event time considered
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
    """A recommender a plugin provides, returned by ``register_recommenders``. The host
    validates its configuration (``config_type``, or ``default_config``) and builds it once at
    start-up (and again when a reload changes its configuration) by calling ``factory``."""

    name: str  # unique across plugins; letters, digits, _ . -
    # Builds the strategy (sync or async).
    factory: Callable[[StrategySetup], Recommender | Awaitable[Recommender]]
    description: str  # shown in the plugins query; fallback reason
    # Settings by example (types from values).
    default_config: Mapping[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()  # config keys hidden in the `plugins` query
    personalized: bool = True  # False: safe for shoppers without personalization consent
    # The declared settings: a dataclass of `setting` fields (types, bounds, docs), instead
    # of ``default_config`` (which checks values only against the defaults' types).
    config_type: type[Any] | None = None
