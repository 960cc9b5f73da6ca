"""Recommended for you: EASE, a linear item-to-item model, fed with the shopper's recent history.

EASE (Steck, 2019) learns an item x item weight matrix ``B`` in closed form: with ``X`` the
shoppers x products interaction matrix, ``P = (XᵀX + λI)⁻¹`` and ``B = -P / diag(P)`` with a
zero diagonal. A shopper's score for product ``j`` is ``Σ_h w_h B[h, j]`` over their history
``h``; here each ``w_h`` decays with how recent the interaction is, because what a shopper did
last says most about what they want next.

Memory and time grow with the square and the cube of the number of products, so the model is
**bounded to the ``max_items`` most active products** (by distinct shoppers): 10,000 products
take about 3.5 GB at the peak and a minute or two to fit on two cores (single precision).
Products outside that set are never recommended by this strategy (the item-to-item and
content strategies still cover them). Each row of ``B`` then keeps its ``neighbours`` largest
weights by magnitude, negative ones included: that keeps the artifact small (8 bytes per
entry) while losing almost no accuracy.

Products the shopper already has are scored like any other (a re-buy is the best prediction
in a grocery shop): the blend decides, from the shop's learned repeatability, whether they are
shown. A shopper with no history yet (cold start) gets the most popular products of the categories
they told us they like (stated preferences), then of their strongest category affinities, then
of the whole shop. Personal: nothing without consent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from shopfront import Candidate, Reason, RequestContext, Slot, StrategySetup, TrainingData
from shopfront.plugins.recommenders.base import Arrays, TrainedRecommender, pool_size, titles
from shopfront.plugins.recommenders.config import knob, parse_config
from shopfront.plugins.recommenders.history import because, personal, shopper_seeds
from shopfront.plugins.recommenders.matrices import shopper_items
from shopfront.plugins.recommenders.neighbours import NeighbourTable, top_k_dense
from shopfront.plugins.recommenders.popularity import (
    ALL,
    SEPARATOR,
    PopularityIndex,
    build_popularity,
    decayed_scores,
)

NAME = "recommended_for_you"
ROW_CHUNK = 1024


@dataclass(frozen=True)
class RecommendedForYouConfig:
    l2: float = knob(
        300.0, "EASE's L2 regularisation λ (larger = smoother, more popular).", min=0.0
    )
    max_items: int = knob(
        10_000, "Most active products the model covers (memory grows with its square).", min=2
    )
    neighbours: int = knob(400, "Weights kept per product row of B.", min=1)
    event_weights: dict[str, float] = knob(
        {
            "view": 0.5,
            "click": 0.5,
            "add_to_cart": 0.8,
            "purchase": 1.0,
            "rating": 1.0,
            "review": 1.0,
        },
        "Strength (0 to 1) of each event type as a positive interaction.",
        min=0.0,
        max=1.0,
    )
    history_seeds: int = knob(500, "Most history products used per shopper.", min=1)
    history_half_life: float = knob(5.0, "Recency half-life of the history, in actions.", min=0.1)
    history_floor: float = knob(0.1, "Weight left to the oldest history (0 to 1).", min=0, max=1)
    cold_start_half_life_days: float = knob(
        14.0, "Half-life of the popularity shown to shoppers with no history.", min=0.01
    )


@dataclass(frozen=True, eq=False)
class RecommendedForYouState:
    weights: NeighbourTable  # row h: the largest entries of B[h, :]
    popular: PopularityIndex

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {**self.weights.to_arrays("weights."), **self.popular.to_arrays()}

    @classmethod
    def from_arrays(cls, arrays: Arrays) -> Self:
        return cls(
            NeighbourTable.from_arrays(arrays, "weights."), PopularityIndex.from_arrays(arrays)
        )


class RecommendedForYou(TrainedRecommender[RecommendedForYouState]):
    state_type = RecommendedForYouState

    def __init__(self, setup: StrategySetup) -> None:
        super().__init__(setup)
        self.config = parse_config(RecommendedForYouConfig, setup.config)

    # -- training --------------------------------------------------------------------------

    def train(self, data: TrainingData) -> RecommendedForYouState:
        c = self.config
        events = data.interactions
        matrix = shopper_items(events, c.event_weights)
        shoppers_per_item = np.asarray((matrix > 0).sum(axis=0)).ravel()
        active = np.flatnonzero(shoppers_per_item)
        if len(active) > c.max_items:
            ranked = active[np.argsort(-shoppers_per_item[active], kind="stable")]
            active = np.sort(ranked[: c.max_items])
        data.report(NAME, 0.05)
        weights = self.ease(sp.csc_matrix(matrix)[:, active], data)
        ids = [events.item_ids[i] for i in active]
        popular = build_popularity(
            data.products,
            decayed_scores(data, c.event_weights, c.cold_start_half_life_days),
            per_list=100,
        )
        data.report(NAME, 1.0)
        return RecommendedForYouState(NeighbourTable.from_rows(ids, weights), popular)

    def ease(
        self, matrix: sp.csc_matrix, data: TrainingData
    ) -> list[tuple[npt.NDArray[np.int32], npt.NDArray[np.float32], npt.NDArray[np.int32]]]:
        """EASE's B for the columns of ``matrix``, as top-|weight| rows."""
        n = matrix.shape[1]
        if n < 2:
            return [(np.zeros(n, np.int32), np.zeros(0, np.float32), np.zeros(0, np.int32))]
        gram = (matrix.T @ matrix).toarray().astype(np.float32)
        gram[np.diag_indices(n)] += self.config.l2
        data.report(NAME, 0.2)
        # The one O(n³) step. Single precision halves time and memory and is plenty for a
        # regularised Gram matrix (λ > 0 keeps it well conditioned).
        weights: npt.NDArray[np.float32] = np.linalg.inv(gram)
        del gram
        data.report(NAME, 0.7)
        weights /= -np.diag(weights)  # column j divided by -P[j, j]
        weights[np.diag_indices(n)] = 0.0
        rows = []
        for start in range(0, n, ROW_CHUNK):
            block = weights[start : start + ROW_CHUNK]
            rows.append(top_k_dense(block, self.config.neighbours, by_magnitude=True))
        return rows

    # -- serving ---------------------------------------------------------------------------

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        state = self.state
        if state is None or not personal(ctx):
            return []
        c = self.config
        history = shopper_seeds(
            ctx, half_life=c.history_half_life, floor=c.history_floor, limit=c.history_seeds
        )
        seeds = [(s.product_id, s.weight) for s in history if s.product_id in state.weights]
        if not seeds:
            return self.cold_start(ctx, slot, state)
        # Only the cart is left out here: whether a product the shopper owns may come back is
        # the blend's decision (the shop's learned repeatability), never this strategy's.
        carted = frozenset(line.product_id for line in ctx.cart_lines)
        ranked = state.weights.aggregate(seeds, carted, pool_size(slot), include_seeds=True)
        scored = [s for s in ranked if s.score > 0]  # negative: evidence against
        if not scored:
            return self.cold_start(ctx, slot, state)
        names = await titles(ctx, [seeds[s.best_seed][0] for s in scored])
        by_id = {s.product_id: s.action for s in history}
        found = []
        for s in scored:
            seed_id = seeds[s.best_seed][0]
            text = because(by_id[seed_id], names.get(seed_id, "products you liked"))
            found.append(Candidate(s.product_id, s.score, (Reason("FOR_YOU", text),)))
        return found

    def cold_start(
        self, ctx: RequestContext, slot: Slot, state: RecommendedForYouState
    ) -> Sequence[Candidate]:
        """Stated preferences, then category affinities, then the whole shop's favourites."""
        profile = ctx.profile
        stated = list(profile.preferences.categories) if profile else []
        liked = [key for key, _ in profile.category_affinities[:3]] if profile else []
        lists = [(key, "stated") for key in stated] + [(key, "liked") for key in liked]
        lists.append((ALL, "popular"))
        wanted = pool_size(slot)
        found: list[Candidate] = []
        seen: set[str] = set()
        for rank, (key, why) in enumerate(lists):
            name = key.rsplit(SEPARATOR, 1)[-1]
            text = {
                "stated": f"Popular in {name}, which you told us you like",
                "liked": f"Popular in {name}, a favourite of yours",
                "popular": "Popular right now",
            }[why]
            ranked = state.popular.ranked(key)
            top = ranked[0][1] if ranked else 1.0
            for pid, score in ranked:
                if pid in seen:
                    continue
                seen.add(pid)
                banded = (len(lists) - rank - 1 + score / top) / len(lists)
                found.append(Candidate(pid, banded, (Reason("FOR_YOU_COLD_START", text),)))
                if len(found) >= wanted:
                    return found
        return found


def create(setup: StrategySetup) -> RecommendedForYou:
    return RecommendedForYou(setup)
