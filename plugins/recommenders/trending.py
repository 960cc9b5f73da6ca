"""Trending: what shoppers engage with now, overall and in the page's category.

Counts every event of the training window, weighted by type and decayed with a half-life, so
this week's favourites outrank last year's. On a category or product page it serves that
category first (deepest level first), then its parents, then the whole shop. It uses no shopper
data, so it is safe without personalization consent, and it is the cold-start fallback: a new
shop with no events shows its newest products instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy.typing as npt
from shopfront import Candidate, RequestContext, Slot, StrategySetup, TrainingData
from shopfront.plugins.recommenders.base import Arrays, TrainedRecommender, candidate, pool_size
from shopfront.plugins.recommenders.config import knob
from shopfront.plugins.recommenders.popularity import (
    ALL,
    SEPARATOR,
    PopularityIndex,
    build_popularity,
    category_keys,
    decayed_scores,
)

NAME = "trending"


@dataclass(frozen=True)
class TrendingConfig:
    half_life_days: float = knob(7.0, "Days after which an event counts half.", min=0.01)
    event_weights: dict[str, float] = knob(
        {
            "view": 1.0,
            "click": 1.0,
            "add_to_cart": 3.0,
            "purchase": 5.0,
            "rating": 2.0,
            "review": 2.0,
        },
        "Weight of each event type in the counts.",
        min=0.0,
    )
    per_list: int = knob(200, "Products kept per category list and overall.", min=1)
    period_label: str = knob(
        "", 'Period named in reasons ("this week"); empty derives it from the half-life.'
    )


@dataclass(frozen=True, eq=False)
class TrendingState:
    popular: PopularityIndex

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        return self.popular.to_arrays()

    @classmethod
    def from_arrays(cls, arrays: Arrays) -> Self:
        return cls(PopularityIndex.from_arrays(arrays))


class Trending(TrainedRecommender[TrendingState]):
    state_type = TrendingState

    def __init__(self, setup: StrategySetup) -> None:
        super().__init__(setup)
        self.config = setup.config_as(TrendingConfig)
        self.period = self.config.period_label or period_of(self.config.half_life_days)

    def train(self, data: TrainingData) -> TrendingState:
        scores = decayed_scores(data, self.config.event_weights, self.config.half_life_days)
        data.report(NAME, 0.5)
        popular = build_popularity(data.products, scores, self.config.per_list)
        data.report(NAME, 1.0)
        return TrendingState(popular)

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        state = self.state
        if state is None:
            return []
        levels = [*category_keys(page_category(ctx, slot))[::-1], ALL]
        wanted = pool_size(slot)
        found: list[Candidate] = []
        seen: set[str] = set()
        for level, key in enumerate(levels):
            ranked = [(pid, s) for pid, s in state.popular.ranked(key) if pid not in seen]
            if not ranked:
                continue
            top = ranked[0][1]
            text = self.reason(key, state.popular.basis)
            for pid, score in ranked:
                # Deeper categories first; within a level, by popularity.
                banded = (len(levels) - 1 - level + score / top) / len(levels)
                found.append(candidate(pid, banded, "TRENDING", text))
                seen.add(pid)
                if len(found) >= wanted:
                    return found
        return found

    def reason(self, key: str, basis: str) -> str:
        place = f" in {key.rsplit(SEPARATOR, 1)[-1]}" if key else ""
        if basis == "newest":
            return f"New{place}" if place else "New arrivals"
        return " ".join(part for part in (f"Popular{place}", self.period) if part)


def page_category(ctx: RequestContext, slot: Slot) -> tuple[str, ...]:
    """The category a page is about: the slot's filter, the category page, or the product's."""
    if slot.filters.category_path:
        return slot.filters.category_path
    if ctx.category_path:
        return ctx.category_path
    product = ctx.products.get(ctx.product_id) if ctx.product_id else None
    return product.category_path if product else ()


def period_of(half_life_days: float) -> str:
    """How a shopper would name the window a half-life mostly covers."""
    if half_life_days <= 1.5:
        return "today"
    if half_life_days <= 10:
        return "this week"
    if half_life_days <= 45:
        return "this month"
    return ""


def create(setup: StrategySetup) -> Trending:
    return Trending(setup)
