"""New for you: products added recently whose text matches what this shopper likes.

The strategy keeps the ``max_new`` newest products of the content model (by creation time,
extended as products are upserted: `ContentRecommender.add_products`), and scores the ones
created within ``new_days`` against the shopper's taste: the sum of the content vectors of
their recent products (cart, views, purchases, liked ratings), the newest counting most.
Work per request: at most ``max_new`` products times the shopper's seeds. Each item says
which of the shopper's products it is like. Personal: nothing without consent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from shopfront import Candidate, Reason, RequestContext, Slot, StrategySetup
from shopfront.plugins.recommenders.base import pool_size, titles
from shopfront.plugins.recommenders.config import knob
from shopfront.plugins.recommenders.content import ContentModel
from shopfront.plugins.recommenders.history import personal, shopper_seeds
from shopfront.plugins.recommenders.searched import ContentConfig, ContentRecommender

NAME = "new_for_you"


@dataclass(frozen=True)
class NewForYouConfig(ContentConfig):
    new_days: float = knob(30.0, "How long a product counts as new, in days.", min=0.1)
    max_new: int = knob(2_000, "Newest products considered (bounds the work per request).", min=1)
    history_seeds: int = knob(20, "Shopper's recent products that describe their taste.", min=1)
    history_half_life: float = knob(5.0, "Recency half-life of those, in actions.", min=0.1)


class NewForYou(ContentRecommender):
    def __init__(self, setup: StrategySetup) -> None:
        options = setup.config_as(NewForYouConfig)
        super().__init__(setup, options)
        self.options = options

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        state = self.state
        if state is None or not personal(ctx):
            return []
        model = state.model
        newest = newest_rows(model, self.options.max_new)
        since = (ctx.now - timedelta(days=self.options.new_days)).timestamp()
        fresh = newest[model.created[newest] >= since]
        history = shopper_seeds(
            ctx, half_life=self.options.history_half_life, floor=0.0,
            limit=self.options.history_seeds,
        )  # fmt: skip
        seeds = [(s, model.vector_of(s.product_id)) for s in history]
        known = [(s, v) for s, v in seeds if v is not None and v.nnz]
        if not len(fresh) or not known:
            return []
        taste = sp.vstack([v * s.weight for s, v in known], format="csr")  # seeds x terms
        similarity = (model.rows[fresh] @ taste.T).toarray()  # new products x seeds
        totals = similarity.sum(axis=1)
        owned = {s.product_id for s, _ in known}
        ranked = [
            (int(i), float(totals[i]))
            for i in np.lexsort((fresh, -totals)).tolist()
            if totals[i] > 0 and model.product_ids[int(fresh[i])] not in owned
        ][: pool_size(slot)]
        if not ranked:
            return []
        liked = [known[int(np.argmax(similarity[i]))][0].product_id for i, _ in ranked]
        names = await titles(ctx, liked)
        return [
            Candidate(
                model.product_ids[int(fresh[i])],
                score,
                (Reason("NEW_FOR_YOU", f"New, and like {names.get(seed, 'what you liked')}"),),
            )
            for (i, score), seed in zip(ranked, liked, strict=True)
        ]


def newest_rows(model: ContentModel, limit: int) -> npt.NDArray[np.intp]:
    """Row numbers of the ``limit`` most recently created products, newest first."""
    dated = np.flatnonzero(model.created > 0)
    if len(dated) > limit:
        dated = dated[np.argpartition(-model.created[dated], limit - 1)[:limit]]
    return dated[np.argsort(-model.created[dated], kind="stable")]


def create(setup: StrategySetup) -> NewForYou:
    return NewForYou(setup)
