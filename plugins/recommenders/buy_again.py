"""Buy again: what this shopper bought before, ranked by their own repeat frequency and by how
due the next purchase is.

For repeat-purchase catalogs (groceries, consumables, cosmetics) a shopper's own purchase
frequency is often the strongest signal there is. Serving scores each past purchase by
``log(1 + times bought)`` times how due it is: how close the days since the last purchase are
to the shopper's **own** repurchase interval for it (their average gap, from the first and last
purchase and the count), pulled towards the shop's typical interval for the product while they
have few repeats. Training learns those typical intervals (the median gap between one
shopper's consecutive purchases, across all shoppers). A product bought once, with no learned
interval, decays with ``half_life_days`` since its purchase instead.

Whether an item may be shown again so soon is the blend's decision (its per-category
``repeatable_categories``), not this strategy's. Personal: nothing without consent.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from shopfront import KIND, Candidate, Purchase, RequestContext, Slot, StrategySetup, TrainingData
from shopfront.plugins.recommenders.base import (
    Arrays,
    TrainedRecommender,
    candidate,
    pool_size,
    text_array,
)
from shopfront.plugins.recommenders.config import knob, parse_config
from shopfront.plugins.recommenders.history import personal

NAME = "buy_again"
DAY = 86_400.0
MIN_INTERVAL_DAYS = 1.0  # several purchases in one day are one restock


@dataclass(frozen=True)
class BuyAgainConfig:
    min_repeats: int = knob(3, "Repeat purchases needed to learn a product's interval.", min=1)
    half_life_days: float = knob(
        90.0,
        "For products without a learned interval: days until a purchase counts half.",
        min=0.01,
    )
    due_tolerance: float = knob(
        0.7,
        "How far (log scale) from the usual interval a purchase still counts as due.",
        min=0.05,
    )
    due_floor: float = knob(
        0.25, "Share of the score a product keeps when it is not due (0 to 1).", min=0, max=1
    )
    shop_interval_weight: float = knob(
        2.0,
        "How many of the shopper's own repeats the shop's typical interval is worth.",
        min=0.0,
    )


@dataclass(frozen=True, eq=False)
class BuyAgainState:
    """Typical days between repeat purchases, for products with enough repeats."""

    product_ids: tuple[str, ...]
    interval_days: npt.NDArray[np.float32]
    intervals: dict[str, float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_id = dict(zip(self.product_ids, map(float, self.interval_days), strict=True))
        object.__setattr__(self, "intervals", by_id)

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {"product_ids": text_array(self.product_ids), "interval_days": self.interval_days}

    @classmethod
    def from_arrays(cls, arrays: Arrays) -> Self:
        return cls(
            tuple(str(s) for s in arrays["product_ids"]),
            np.asarray(arrays["interval_days"], dtype=np.float32),
        )


class BuyAgain(TrainedRecommender[BuyAgainState]):
    state_type = BuyAgainState

    def __init__(self, setup: StrategySetup) -> None:
        super().__init__(setup)
        self.config = parse_config(BuyAgainConfig, setup.config)

    def train(self, data: TrainingData) -> BuyAgainState:
        events = data.interactions
        bought = (events.kind == KIND["purchase"]) & (events.item >= 0)
        user, item, when = events.user[bought], events.item[bought], events.timestamp[bought]
        order = np.lexsort((when, item, user))
        user, item, when = user[order], item[order], when[order]
        same = (user[1:] == user[:-1]) & (item[1:] == item[:-1])
        gaps = np.diff(when) / DAY
        repeat = same & (gaps >= 1.0 / 24)  # one order's lines are not a repeat purchase
        gap_item, gap_days = item[1:][repeat], gaps[repeat]
        ids: list[str] = []
        medians: list[float] = []
        if len(gap_item):
            by_item = np.argsort(gap_item, kind="stable")
            gap_item, gap_days = gap_item[by_item], gap_days[by_item]
            bounds = np.r_[0, np.flatnonzero(np.diff(gap_item)) + 1, len(gap_item)]
            for lo, hi in itertools.pairwise(bounds):
                if hi - lo >= self.config.min_repeats:
                    ids.append(events.item_ids[int(gap_item[lo])])
                    medians.append(float(np.median(gap_days[lo:hi])))
        data.report(NAME, 1.0)
        return BuyAgainState(tuple(ids), np.array(medians, dtype=np.float32))

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        if not personal(ctx) or ctx.profile is None:
            return []
        learned = self.state.intervals if self.state else {}
        scored: list[tuple[float, str, str]] = []
        for pid, purchase in ctx.profile.purchases.items():
            elapsed = max((ctx.now - purchase.last_at).total_seconds() / DAY, 0.0)
            interval = self.interval(purchase, learned.get(pid))
            frequency = math.log1p(purchase.count)
            if interval is not None:
                due = self.due(elapsed, interval)
                score = frequency * (self.config.due_floor + (1 - self.config.due_floor) * due)
                text = (
                    f"Time to restock? You usually buy this every {interval:.0f} days"
                    if elapsed >= 0.8 * interval
                    else self.bought_text(purchase.count)
                )
            else:
                score = frequency * 0.5 ** (elapsed / self.config.half_life_days)
                text = self.bought_text(purchase.count)
            scored.append((score, pid, text))
        scored.sort(key=lambda s: (-s[0], s[1]))
        return [
            candidate(pid, score, "BUY_AGAIN", text)
            for score, pid, text in scored[: pool_size(slot)]
        ]

    def interval(self, purchase: Purchase, learned: float | None) -> float | None:
        """Days this shopper usually waits before buying it again: their own average gap,
        pulled towards the shop's typical gap for the product while they have few repeats."""
        own = purchase.interval_days
        if own is None:
            return learned
        repeats = purchase.count - 1
        if learned is not None:
            prior = self.config.shop_interval_weight
            own = (own * repeats + learned * prior) / (repeats + prior)
        return max(own, MIN_INTERVAL_DAYS)

    def due(self, elapsed_days: float, interval_days: float) -> float:
        """1.0 when the usual interval has just passed, falling off on a log scale."""
        distance = math.log(max(elapsed_days, 0.5) / interval_days)
        return math.exp(-0.5 * (distance / self.config.due_tolerance) ** 2)

    @staticmethod
    def bought_text(count: int) -> str:
        return f"You bought this {count} times" if count > 1 else "You bought this before"


def create(setup: StrategySetup) -> BuyAgain:
    return BuyAgain(setup)
