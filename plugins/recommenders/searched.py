"""Search: products matching the page's query, and "Because you searched 'trail shoes'".

Two strategies on one content model (`shopfront.plugins.recommenders.content`, fitted at
training over product text, reviews and the queries that led shoppers to products):

- ``search`` fills the SEARCH page: the products that match ``searchQuery``, best match
  first. It uses no shopper data (the blend then ranks the matches for the shopper: their
  tastes, their size, their price range).
- ``because_you_searched`` brings a shopper's latest searches (their profile keeps the last
  few queries) to any page: each query's matches, the newest query counting most, each item
  saying which search it answers. Personal: nothing without consent.

Both are served from an inverted index: the work per request follows the postings of the
query's words, not the size of the catalog. A product upserted after training is searchable
at once (`ContentRecommender.add_products`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy.typing as npt
from shopfront import Candidate, Product, Reason, RequestContext, Slot, StrategySetup, TrainingData
from shopfront.plugins.recommenders.base import Arrays, TrainedRecommender, pool_size
from shopfront.plugins.recommenders.config import knob
from shopfront.plugins.recommenders.content import ContentModel
from shopfront.plugins.recommenders.history import personal

SEARCH = "search"
BECAUSE_YOU_SEARCHED = "because_you_searched"


@dataclass(frozen=True)
class ContentConfig:
    max_features: int = knob(50_000, "Largest vocabulary of the content model.", min=10)
    max_postings: int = knob(
        2_000, "Products kept per word of the index (bounds the work per query).", min=10
    )
    searches: int = knob(3, "Latest searches of the shopper used (because_you_searched).", min=1)


@dataclass(frozen=True, eq=False)
class ContentState:
    model: ContentModel

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        return self.model.to_arrays()

    @classmethod
    def from_arrays(cls, arrays: Arrays) -> Self:
        return cls(ContentModel.from_arrays(arrays))


class ContentRecommender(TrainedRecommender[ContentState]):
    """A strategy served from the content model; it learns new products without training."""

    state_type = ContentState

    def __init__(self, setup: StrategySetup, config: ContentConfig | None = None) -> None:
        super().__init__(setup)
        self.config = config or setup.config_as(ContentConfig)

    def train(self, data: TrainingData) -> ContentState:
        data.report(self.name, 0.1)
        # Inactive products stay in the index (the blend never shows them) so the events'
        # product numbers keep matching the catalog's order.
        model = ContentModel.fit(
            data.products,
            data.interactions,
            max_features=self.config.max_features,
            max_postings=self.config.max_postings,
        )
        data.report(self.name, 1.0)
        return ContentState(model)

    def add_products(self, products: Sequence[Product]) -> None:
        """Index ``products`` (new or changed) now, with the fitted vocabulary: called when
        the catalog changes between trainings. One atomic swap, like a model load."""
        state = self.state
        if state is not None:
            self._state = ContentState(state.model.add_products(products))


class SearchMatches(ContentRecommender):
    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        state = self.state
        query = (ctx.search_query or "").strip()
        if state is None or not query:
            return []
        carted = frozenset(line.product_id for line in ctx.cart_lines)
        reason = Reason("SEARCH", f"Matches '{query}'")
        return [
            Candidate(pid, score, (reason,))
            for pid, score in state.model.search(query, pool_size(slot), carted)
        ]


class BecauseYouSearched(ContentRecommender):
    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        state = self.state
        if state is None or not personal(ctx) or ctx.profile is None:
            return []
        queries = [q for q in ctx.profile.recent_searches if q != ctx.search_query]
        queries = queries[: self.config.searches]
        carted = frozenset(line.product_id for line in ctx.cart_lines)
        best: dict[str, tuple[float, str]] = {}
        totals: dict[str, float] = {}
        for rank, query in enumerate(queries):
            weight = 0.5**rank  # the newest search counts most
            for pid, score in state.model.search(query, pool_size(slot), carted):
                share = weight * score
                totals[pid] = totals.get(pid, 0.0) + share
                if pid not in best or share > best[pid][0]:
                    best[pid] = (share, query)
        ranked = sorted(totals.items(), key=lambda ps: (-ps[1], ps[0]))[: pool_size(slot)]
        return [
            Candidate(pid, score, (Reason("SEARCHED", f"Because you searched '{best[pid][1]}'"),))
            for pid, score in ranked
        ]


def create_search(setup: StrategySetup) -> SearchMatches:
    return SearchMatches(setup)


def create_because_you_searched(setup: StrategySetup) -> BecauseYouSearched:
    return BecauseYouSearched(setup)
