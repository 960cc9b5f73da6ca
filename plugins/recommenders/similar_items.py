"""Similar items: content-based neighbours from what the catalog says about each product.

Each product becomes a vector: TF-IDF over its title and description, plus one-hot features
for every prefix of its category path, its brand, its tags and its ``key=value`` attributes.
Each block is normalised and weighted, so the cosine of two products is a weighted mix of how
alike their texts, categories, brands, tags and attributes are. Training keeps every product's
``neighbours`` most similar active products; serving looks them up.

It needs no behaviour at all, so it is what a new product gets shown next to (and what shows
it), and it uses no shopper data unless consent allows ("Because you viewed X"). By default
neighbours come from the product's own department (top-level category), which is what shoppers
expect from "similar" and keeps training fast; a department larger than ``exact_max_items`` is
first projected onto ``dimensions`` latent dimensions (truncated SVD) to bound time and memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from shopfront import Candidate, Product, Reason, RequestContext, Slot, StrategySetup, TrainingData
from shopfront.plugins.recommenders.base import Arrays, TrainedRecommender, pool_size, titles
from shopfront.plugins.recommenders.config import knob, parse_config
from shopfront.plugins.recommenders.history import because, shopper_seeds
from shopfront.plugins.recommenders.neighbours import NeighbourTable, top_k_dense, top_k_sparse
from shopfront.plugins.recommenders.popularity import (
    SEPARATOR,
    PopularityIndex,
    build_popularity,
    category_keys,
    decayed_scores,
)
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize

NAME = "similar_items"
CHUNK = 1024
# Products added after training have no neighbours yet; they get their category's favourites,
# by these weights and half-life.
FALLBACK_WEIGHTS = {"view": 1.0, "add_to_cart": 2.0, "purchase": 3.0}
FALLBACK_HALF_LIFE_DAYS = 30.0


@dataclass(frozen=True)
class SimilarItemsConfig:
    neighbours: int = knob(50, "Neighbours kept per product.", min=1, max=1000)
    text_weight: float = knob(1.0, "Weight of title and description text.", min=0.0)
    category_weight: float = knob(1.0, "Weight of the category path.", min=0.0)
    brand_weight: float = knob(0.5, "Weight of the brand.", min=0.0)
    tag_weight: float = knob(0.5, "Weight of the tags.", min=0.0)
    attribute_weight: float = knob(0.3, "Weight of the attributes.", min=0.0)
    max_features: int = knob(50_000, "Largest text vocabulary.", min=10)
    within_department: bool = knob(True, "Only neighbours from the same top-level category.")
    exact_max_items: int = knob(
        10_000, "Departments larger than this are compared in a projected space.", min=10
    )
    dimensions: int = knob(128, "Latent dimensions of that projection.", min=2)
    history_seeds: int = knob(5, "Recent products of the shopper used off product pages.", min=0)
    history_half_life: float = knob(3.0, "Recency half-life of those seeds, in actions.", min=0.1)


@dataclass(frozen=True, eq=False)
class SimilarItemsState:
    neighbours: NeighbourTable
    popular: PopularityIndex  # for products added since training: the best of their category

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {**self.neighbours.to_arrays("neighbours."), **self.popular.to_arrays()}

    @classmethod
    def from_arrays(cls, arrays: Arrays) -> Self:
        return cls(
            NeighbourTable.from_arrays(arrays, "neighbours."), PopularityIndex.from_arrays(arrays)
        )


class SimilarItems(TrainedRecommender[SimilarItemsState]):
    state_type = SimilarItemsState

    def __init__(self, setup: StrategySetup) -> None:
        super().__init__(setup)
        self.config = parse_config(SimilarItemsConfig, setup.config)

    # -- training --------------------------------------------------------------------------

    def train(self, data: TrainingData) -> SimilarItemsState:
        active = [p for p in data.products if p.active]
        features = self.features(active)
        data.report(NAME, 0.1)
        departments: dict[str, list[int]] = defaultdict(list)
        for i, product in enumerate(active):
            key = (
                product.category_path[0]
                if self.config.within_department and product.category_path
                else ""
            )
            departments[key].append(i)
        rows: dict[int, tuple[npt.NDArray[Any], npt.NDArray[Any]]] = {}
        done = 0
        for members in departments.values():
            index = np.array(members)
            for row, cols, scores in self.department_neighbours(features[index]):
                rows[int(index[row])] = (index[cols], scores)
            done += len(members)
            data.report(NAME, 0.1 + 0.85 * done / max(len(active), 1))
        table = NeighbourTable.from_rows([p.id for p in active], _in_order(rows, len(active)))
        fallback = decayed_scores(data, FALLBACK_WEIGHTS, FALLBACK_HALF_LIFE_DAYS)
        popular = build_popularity(data.products, fallback, per_list=50)
        data.report(NAME, 1.0)
        return SimilarItemsState(table, popular)

    def features(self, products: Sequence[Product]) -> sp.csr_matrix:
        """One L2-normalised row per product: the weighted blocks side by side."""
        c = self.config
        texts = [f"{p.title} {p.title} {p.description}" for p in products]
        blocks = [
            (c.text_weight, _tfidf(texts, c.max_features)),
            (c.category_weight, _one_hot([category_keys(p.category_path) for p in products])),
            (c.brand_weight, _one_hot([[p.brand] if p.brand else [] for p in products])),
            (c.tag_weight, _one_hot([list(p.tags) for p in products])),
            (
                c.attribute_weight,
                _one_hot([[f"{k}={v}" for k, v in p.attributes.items()] for p in products]),
            ),
        ]
        weighted = [
            normalize(block) * np.sqrt(w) for w, block in blocks if w > 0 and block.shape[1]
        ]
        if not weighted:
            return sp.csr_matrix((len(products), 0), dtype=np.float32)
        return sp.csr_matrix(normalize(sp.hstack(weighted, format="csr")), dtype=np.float32)

    def department_neighbours(
        self, features: sp.csr_matrix
    ) -> Iterator[tuple[int, npt.NDArray[Any], npt.NDArray[Any]]]:
        """(row, neighbour rows, scores) for each product of one department."""
        n = features.shape[0]
        k = self.config.neighbours
        dense: npt.NDArray[np.float32] | None = None
        if n > self.config.exact_max_items and features.shape[1] > self.config.dimensions:
            svd = TruncatedSVD(self.config.dimensions, algorithm="randomized", random_state=0)
            dense = normalize(svd.fit_transform(features)).astype(np.float32)
        for start in range(0, n, CHUNK):
            if dense is not None:
                counts, scores, cols = top_k_dense(
                    dense[start : start + CHUNK] @ dense.T, k, row_offset=start
                )
            else:
                block = sp.csr_matrix(features[start : start + CHUNK] @ features.T)
                if block.nnz > 0.3 * block.shape[0] * block.shape[1]:  # mostly filled
                    counts, scores, cols = top_k_dense(block.toarray(), k, row_offset=start)
                else:
                    counts, scores, cols = top_k_sparse(block, k, row_offset=start)
            offsets = np.r_[0, np.cumsum(counts)]
            for r in range(len(counts)):
                lo, hi = offsets[r], offsets[r + 1]
                yield start + r, cols[lo:hi], scores[lo:hi]

    # -- serving ---------------------------------------------------------------------------

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        state = self.state
        if state is None:
            return []
        seeds: list[tuple[str, float]] = []
        actions: list[str] = []
        if ctx.product_id:
            seeds, actions = [(ctx.product_id, 1.0)], ["similar"]
        elif ctx.cart_lines:
            seeds = [(line.product_id, 1.0) for line in ctx.cart_lines]
            actions = ["carted"] * len(seeds)
        else:
            history = shopper_seeds(
                ctx,
                half_life=self.config.history_half_life,
                floor=0.0,
                limit=self.config.history_seeds,
            )
            seeds = [(s.product_id, s.weight) for s in history]
            actions = [s.action for s in history]
        if ctx.product_id and ctx.product_id not in state.neighbours:
            return self.new_product_fallback(ctx, slot, state)
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
            text = f"Similar to {title}" if action == "similar" else because(action, title)
            found.append(Candidate(s.product_id, s.score, (Reason("SIMILAR", text),)))
        return found

    def new_product_fallback(
        self, ctx: RequestContext, slot: Slot, state: SimilarItemsState
    ) -> Sequence[Candidate]:
        """A product added since training has no neighbours yet: the best of its category."""
        product = ctx.products.get(ctx.product_id or "")
        if product is None or not product.category_path:
            return []
        for key in category_keys(product.category_path)[::-1]:
            ranked = [(pid, s) for pid, s in state.popular.ranked(key) if pid != product.id]
            if ranked:
                text = f"More in {key.rsplit(SEPARATOR, 1)[-1]}"
                return [
                    Candidate(pid, score, (Reason("SIMILAR", text),))
                    for pid, score in ranked[: pool_size(slot)]
                ]
        return []


def _tfidf(texts: Sequence[str], max_features: int) -> sp.csr_matrix:
    vectorizer = TfidfVectorizer(
        max_features=max_features,
        sublinear_tf=True,
        stop_words="english",
        max_df=0.5 if len(texts) > 20 else 1.0,
        dtype=np.float32,
    )
    try:
        return sp.csr_matrix(vectorizer.fit_transform(texts))
    except ValueError:  # no usable words anywhere (e.g. empty titles only)
        return sp.csr_matrix((len(texts), 0), dtype=np.float32)


def _one_hot(tokens: Sequence[list[str]]) -> sp.csr_matrix:
    if not any(tokens):
        return sp.csr_matrix((len(tokens), 0), dtype=np.float32)
    vectorizer = CountVectorizer(analyzer=_identity, binary=True, lowercase=False, dtype=np.float32)
    return sp.csr_matrix(vectorizer.fit_transform(tokens))


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def _in_order(
    rows: dict[int, tuple[npt.NDArray[Any], npt.NDArray[Any]]], n: int
) -> Iterator[tuple[npt.NDArray[np.int32], npt.NDArray[np.float32], npt.NDArray[np.int32]]]:
    empty = (np.zeros(0, np.int32), np.zeros(0, np.float32))
    for i in range(n):
        cols, scores = rows.get(i, empty)
        yield np.array([len(cols)], np.int32), scores.astype(np.float32), cols.astype(np.int32)


def create(setup: StrategySetup) -> SimilarItems:
    return SimilarItems(setup)
