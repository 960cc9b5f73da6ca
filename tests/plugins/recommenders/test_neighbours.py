"""Neighbour tables: top-k selection and aggregation agree with a brute-force computation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from shopfront.plugins.recommenders.matrices import shopper_items
from shopfront.plugins.recommenders.neighbours import (
    NeighbourTable,
    cosine_neighbours,
    top_k_dense,
    top_k_sparse,
)
from shopfront.plugins.recommenders.popularity import decayed_scores

from tests.plugins.recommenders.kit import event, product, training


@st.composite
def tables(draw: st.DrawFn) -> tuple[NeighbourTable, np.ndarray]:
    n = draw(st.integers(1, 12))
    dense = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        for j in draw(st.sets(st.integers(0, n - 1), max_size=n)):
            if j != i:
                dense[i, j] = draw(st.integers(1, 50)) / 10
    k = draw(st.integers(1, n))
    table = NeighbourTable.from_rows([f"i{i}" for i in range(n)], [top_k_dense(dense, k)])
    kept = np.zeros_like(dense)
    for i in range(n):
        for pid, score in table.neighbours(f"i{i}"):
            kept[i, int(pid[1:])] = score
    return table, kept


@settings(max_examples=150, deadline=None)
@given(tables(), st.data())
def test_aggregate_matches_brute_force(
    world: tuple[NeighbourTable, np.ndarray], data: st.DataObject
) -> None:
    table, kept = world
    n = kept.shape[0]
    seed_rows = data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n))
    weights = [data.draw(st.integers(1, 5)) / 2 for _ in seed_rows]
    excluded = data.draw(st.sets(st.integers(0, n - 1), max_size=n))
    limit = data.draw(st.integers(1, n + 1))
    seeds = [(f"i{r}", w) for r, w in zip(seed_rows, weights, strict=True)]
    got = table.aggregate(seeds, frozenset(f"i{e}" for e in excluded), limit)

    totals = np.zeros(n)
    for r, w in zip(seed_rows, weights, strict=True):
        totals += w * kept[r]
    skip = set(excluded) | set(seed_rows)
    expected = sorted((-totals[j], j) for j in range(n) if totals[j] != 0 and j not in skip)[:limit]
    assert [s.product_id for s in got] == [f"i{j}" for _, j in expected]
    for s in got:
        assert abs(s.score - totals[int(s.product_id[1:])]) < 1e-4
        best = max(
            range(len(seeds)),
            key=lambda n_: weights[n_] * kept[seed_rows[n_], int(s.product_id[1:])],
        )
        contribution = weights[s.best_seed] * kept[seed_rows[s.best_seed], int(s.product_id[1:])]
        assert (
            abs(contribution - weights[best] * kept[seed_rows[best], int(s.product_id[1:])]) < 1e-5
        )


def test_unknown_seeds_and_everything_excluded_give_nothing() -> None:
    table = NeighbourTable.from_rows(["a", "b"], [top_k_dense(np.array([[0, 1], [1, 0]]), 1)])
    assert table.aggregate([("zzz", 1.0)]) == []
    assert table.aggregate([("a", 1.0)], exclude=frozenset({"b"})) == []
    assert [s.product_id for s in table.aggregate([("a", 1.0)])] == ["b"]


def test_sparse_and_dense_top_k_agree_and_skip_the_diagonal() -> None:
    rng = np.random.default_rng(1)
    dense = rng.random((6, 6)).astype(np.float32) * (rng.random((6, 6)) < 0.6)
    a = top_k_dense(dense, 3)
    b = top_k_sparse(sp.csr_matrix(dense), 3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    table = NeighbourTable.from_rows([str(i) for i in range(6)], [a])
    assert all(pid != str(i) for i in range(6) for pid, _ in table.neighbours(str(i)))


def test_cosine_neighbours_with_min_support() -> None:
    baskets = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [1, 0, 1]], dtype=np.float32))
    table = NeighbourTable.from_rows(["a", "b", "c"], cosine_neighbours(baskets, 5, min_support=2))
    assert [pid for pid, _ in table.neighbours("a")] == ["b"]  # a-c co-occur once only
    assert table.neighbours("b")[0][1] == pytest.approx(2 / np.sqrt(3 * 2))


def test_stars_weight_the_interactions() -> None:
    catalog = [product(p) for p in ("liked", "hated", "meh", "seen")]
    events = [
        event("rating", "u1", "liked", rating=5),
        event("view", "u1", "hated"),
        event("rating", "u1", "hated", rating=1),
        event("rating", "u1", "meh", rating=3),
        event("view", "u1", "seen"),
    ]
    data = training(catalog, events)
    matrix = shopper_items(data.interactions, {"view": 0.5, "rating": 1.0}).toarray()
    by_item = dict(zip(data.interactions.item_ids, matrix[0].tolist(), strict=True))
    # Five stars is the strongest evidence, three stars a weak one, a one-star rating wipes
    # out the view before it.
    assert by_item == {"liked": 1.5, "hated": 0.0, "meh": 0.25, "seen": 0.5}
    scores = decayed_scores(data, {"view": 1.0, "rating": 2.0}, half_life_days=1000)
    assert scores[data.product_index["hated"]] < 0 < scores[data.product_index["meh"]]
