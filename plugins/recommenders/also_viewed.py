"""Also viewed: item-to-item collaborative filtering ("shoppers who viewed this also viewed").

Training builds a shoppers x products matrix whose cells hold each shopper's strongest
interaction with a product, weighted by event type (a purchase counts more than a view), and
keeps each product's ``neighbours`` best cosine neighbours. Serving adds up the neighbour lists
of the seeds: the product on the page, else the cart, else (with consent) the shopper's recent
products, each weighted by recency so the last thing they looked at counts most.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shopfront import Candidate, Reason, RequestContext, Slot, StrategySetup, TrainingData
from shopfront.plugins.recommenders.base import TrainedRecommender, pool_size, titles
from shopfront.plugins.recommenders.config import knob, parse_config
from shopfront.plugins.recommenders.history import because, shopper_seeds
from shopfront.plugins.recommenders.matrices import shopper_items
from shopfront.plugins.recommenders.neighbours import (
    NeighbourState,
    NeighbourTable,
    cosine_neighbours,
)

NAME = "also_viewed"


@dataclass(frozen=True)
class AlsoViewedConfig:
    neighbours: int = knob(100, "Neighbours kept per product.", min=1, max=1000)
    event_weights: dict[str, float] = knob(
        {
            "view": 1.0,
            "click": 1.0,
            "add_to_cart": 2.0,
            "purchase": 3.0,
            "rating": 2.0,
            "review": 2.0,
        },
        "Strength of each event type as evidence of interest.",
        min=0.0,
    )
    min_support: float = knob(
        0.0,
        "Least co-occurrence (sum of weight products) for two products to be neighbours.",
        min=0.0,
    )
    max_per_shopper: int = knob(500, "Most recent products counted per shopper.", min=1)
    history_seeds: int = knob(50, "Shopper's products used as seeds off product pages.", min=0)
    history_half_life: float = knob(5.0, "Recency half-life of those seeds, in actions.", min=0.1)
    history_floor: float = knob(0.1, "Weight left to the oldest seeds (0 to 1).", min=0, max=1)


class AlsoViewed(TrainedRecommender[NeighbourState]):
    state_type = NeighbourState

    def __init__(self, setup: StrategySetup) -> None:
        super().__init__(setup)
        self.config = parse_config(AlsoViewedConfig, setup.config)

    def train(self, data: TrainingData) -> NeighbourState:
        events = data.interactions
        matrix = shopper_items(events, self.config.event_weights, self.config.max_per_shopper)
        rows = cosine_neighbours(
            matrix,
            self.config.neighbours,
            min_support=self.config.min_support,
            progress=lambda done: data.report(NAME, done),
        )
        return NeighbourState(NeighbourTable.from_rows(events.item_ids, rows))

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        state = self.state
        if state is None:
            return []
        if ctx.product_id:
            seeds, actions = [(ctx.product_id, 1.0)], ["page"]
        elif ctx.cart_lines:
            seeds = [(line.product_id, 1.0) for line in ctx.cart_lines]
            actions = ["carted"] * len(seeds)
        else:
            history = shopper_seeds(
                ctx,
                half_life=self.config.history_half_life,
                floor=self.config.history_floor,
                limit=self.config.history_seeds,
            )
            seeds = [(s.product_id, s.weight) for s in history]
            actions = [s.action for s in history]
        exclude = frozenset(line.product_id for line in ctx.cart_lines)
        # Seeds from the shopper's history stay eligible (the blend decides about owned ones).
        scored = state.neighbours.aggregate(
            seeds, exclude, pool_size(slot), include_seeds=not ctx.product_id
        )
        if not scored:
            return []
        names = await titles(ctx, [seeds[s.best_seed][0] for s in scored])
        found = []
        for s in scored:
            seed_id = seeds[s.best_seed][0]
            title = names.get(seed_id, "a product you liked")
            action = actions[s.best_seed]
            text = (
                f"Shoppers who viewed {title} also viewed this"
                if action == "page"
                else because(action, title)
            )
            found.append(Candidate(s.product_id, s.score, (Reason("ALSO_VIEWED", text),)))
        return found


def create(setup: StrategySetup) -> AlsoViewed:
    return AlsoViewed(setup)
