"""Bought together: products that share orders ("Often bought with Y").

Training builds an orders x products matrix from purchases (purchases without an order id
group per shopper and day) and keeps each product's ``neighbours`` best cosine neighbours among
those bought with it at least ``min_co_purchases`` times. Serving seeds with the product on the
page, else the cart, else (with consent) the shopper's recent purchases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shopfront import Candidate, Reason, RequestContext, Slot, StrategySetup, TrainingData
from shopfront.plugins.recommenders.base import TrainedRecommender, pool_size, titles
from shopfront.plugins.recommenders.config import knob, parse_config
from shopfront.plugins.recommenders.history import personal
from shopfront.plugins.recommenders.matrices import order_items
from shopfront.plugins.recommenders.neighbours import (
    NeighbourState,
    NeighbourTable,
    cosine_neighbours,
)

NAME = "bought_together"


@dataclass(frozen=True)
class BoughtTogetherConfig:
    neighbours: int = knob(50, "Neighbours kept per product.", min=1, max=1000)
    min_co_purchases: int = knob(2, "Orders two products must share to be paired.", min=1)
    history_seeds: int = knob(
        5, "Recent purchases used as seeds off product and cart pages.", min=0
    )


class BoughtTogether(TrainedRecommender[NeighbourState]):
    state_type = NeighbourState

    def __init__(self, setup: StrategySetup) -> None:
        super().__init__(setup)
        self.config = parse_config(BoughtTogetherConfig, setup.config)

    def train(self, data: TrainingData) -> NeighbourState:
        events = data.interactions
        rows = cosine_neighbours(
            order_items(events),
            self.config.neighbours,
            min_support=self.config.min_co_purchases,
            progress=lambda done: data.report(NAME, done),
        )
        return NeighbourState(NeighbourTable.from_rows(events.item_ids, rows))

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        state = self.state
        if state is None:
            return []
        if ctx.product_id:
            seeds = [(ctx.product_id, 1.0)]
        elif ctx.cart_lines:
            seeds = [(line.product_id, float(line.quantity) ** 0.5) for line in ctx.cart_lines]
        elif personal(ctx) and ctx.profile is not None:
            purchases = ctx.profile.purchases
            newest = sorted(purchases, key=lambda p: purchases[p].last_at, reverse=True)
            seeds = [
                (pid, 0.5**rank) for rank, pid in enumerate(newest[: self.config.history_seeds])
            ]
        else:
            return []
        exclude = frozenset(line.product_id for line in ctx.cart_lines)
        # Past purchases seed and stay eligible (the blend decides about owned products).
        scored = state.neighbours.aggregate(
            seeds, exclude, pool_size(slot), include_seeds=not (ctx.product_id or ctx.cart_lines)
        )
        if not scored:
            return []
        names = await titles(ctx, [seeds[s.best_seed][0] for s in scored])
        return [
            Candidate(
                s.product_id,
                s.score,
                (
                    Reason(
                        "BOUGHT_TOGETHER",
                        f"Often bought with {names.get(seeds[s.best_seed][0], 'your items')}",
                    ),
                ),
            )
            for s in scored
        ]


def create(setup: StrategySetup) -> BoughtTogether:
    return BoughtTogether(setup)
