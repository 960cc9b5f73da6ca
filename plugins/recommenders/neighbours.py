"""Precomputed top-k neighbour lists, the serving structure of every item-to-item strategy.

Training computes item-item similarities in bounded chunks and keeps each item's ``k`` best
neighbours in a CSR table (``indptr``, ``indices``, ``scores``). Serving looks up the rows of a
few seed products and adds them up: the work per request is bounded by seeds x k, whatever the
size of the catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int32]


@dataclass(frozen=True)
class Scored:
    """An aggregated neighbour: total score and the seed that contributed most."""

    product_id: str
    score: float
    best_seed: int  # index into the seeds given to `NeighbourTable.aggregate`


@dataclass(frozen=True, eq=False)
class NeighbourTable:
    """Each item's best neighbours, strongest first. Row ``i`` belongs to ``item_ids[i]``."""

    item_ids: tuple[str, ...]
    indptr: npt.NDArray[np.int64]
    indices: IntArray
    scores: FloatArray
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {pid: i for i, pid in enumerate(self.item_ids)})

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._index

    @property
    def size(self) -> int:
        """Stored neighbour entries (the table's memory is about 8 bytes each)."""
        return int(self.indices.shape[0])

    def neighbours(self, product_id: str) -> list[tuple[str, float]]:
        """``product_id``'s neighbours, best first; empty for an unknown product."""
        row = self._index.get(product_id)
        if row is None:
            return []
        lo, hi = int(self.indptr[row]), int(self.indptr[row + 1])
        return [
            (self.item_ids[j], float(s))
            for j, s in zip(self.indices[lo:hi], self.scores[lo:hi], strict=True)
        ]

    def aggregate(
        self,
        seeds: Sequence[tuple[str, float]],
        exclude: frozenset[str] = frozenset(),
        limit: int = 200,
        *,
        include_seeds: bool = False,
    ) -> list[Scored]:
        """The ``limit`` best products of the sum of the seeds' neighbour rows, each row scaled
        by its seed's weight. ``exclude`` never appears; nor do the seeds themselves, unless
        ``include_seeds`` (a model whose rows score re-buying a seed from the other seeds).

        Work is proportional to the seeds' stored neighbours, not to the catalog.
        """
        rows = [(self._index.get(pid), weight) for pid, weight in seeds]
        spans = [
            (n, int(self.indptr[row]), int(self.indptr[row + 1]), weight)
            for n, (row, weight) in enumerate(rows)
            if row is not None and weight != 0
        ]
        if not spans:
            return []
        idx = np.concatenate([self.indices[lo:hi] for _, lo, hi, _ in spans])
        contrib = np.concatenate(
            [self.scores[lo:hi] * np.float32(weight) for _, lo, hi, weight in spans]
        )
        seed = np.concatenate([np.full(hi - lo, n, dtype=np.int32) for n, lo, hi, _ in spans])
        if len(idx) * 8 > len(self.item_ids):  # dense enough: one pass over a small array
            totals_all = np.bincount(idx, weights=contrib, minlength=len(self.item_ids))
            items = np.flatnonzero(totals_all)
            totals = totals_all[items]
        else:
            items, inverse = np.unique(idx, return_inverse=True)
            totals = np.bincount(inverse, weights=contrib, minlength=len(items))
        skipped = exclude if include_seeds else exclude | {pid for pid, _ in seeds}
        skip = {self._index[pid] for pid in skipped if pid in self._index}
        wanted = min(len(items), limit + len(skip))
        top = (
            np.argpartition(-totals, wanted - 1)[:wanted]
            if wanted < len(items)
            else np.arange(len(items))
        )
        top = top[np.lexsort((items[top], -totals[top]))]  # best first, ties by position
        chosen = [(int(items[t]), float(totals[t])) for t in top if int(items[t]) not in skip]
        chosen = chosen[:limit]
        if not chosen:
            return []
        # The strongest single contribution to each chosen product names its seed.
        mask = np.isin(idx, np.array([item for item, _ in chosen], dtype=np.int32))
        sub_idx, sub_contrib, sub_seed = idx[mask], contrib[mask], seed[mask]
        order = np.lexsort((sub_contrib, sub_idx))  # by product, strongest last
        last = np.r_[np.flatnonzero(np.diff(sub_idx[order])), len(order) - 1]
        best = dict(zip(sub_idx[order][last].tolist(), sub_seed[order][last].tolist(), strict=True))
        return [Scored(self.item_ids[item], total, best[item]) for item, total in chosen]

    # -- persistence -----------------------------------------------------------------------

    def to_arrays(self, prefix: str) -> dict[str, npt.NDArray[np.generic]]:
        return {
            f"{prefix}item_ids": np.array(self.item_ids, dtype=np.str_),
            f"{prefix}indptr": self.indptr,
            f"{prefix}indices": self.indices,
            f"{prefix}scores": self.scores,
        }

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, npt.NDArray[np.generic]], prefix: str
    ) -> NeighbourTable:
        return cls(
            item_ids=tuple(str(s) for s in arrays[f"{prefix}item_ids"]),
            indptr=np.asarray(arrays[f"{prefix}indptr"], dtype=np.int64),
            indices=np.asarray(arrays[f"{prefix}indices"], dtype=np.int32),
            scores=np.asarray(arrays[f"{prefix}scores"], dtype=np.float32),
        )

    @classmethod
    def from_rows(
        cls, item_ids: Sequence[str], rows: Iterable[tuple[IntArray, FloatArray, IntArray]]
    ) -> NeighbourTable:
        """Assemble chunks of ``(row_counts, scores, indices)`` in row order."""
        counts: list[IntArray] = []
        indices: list[IntArray] = []
        scores: list[FloatArray] = []
        for row_counts, chunk_scores, chunk_indices in rows:
            counts.append(row_counts)
            scores.append(chunk_scores)
            indices.append(chunk_indices)
        sizes = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
        if len(sizes) != len(item_ids):
            raise ValueError(f"{len(sizes)} neighbour rows for {len(item_ids)} items")
        return cls(
            item_ids=tuple(item_ids),
            indptr=np.r_[0, np.cumsum(sizes)].astype(np.int64),
            indices=np.concatenate(indices).astype(np.int32) if indices else np.zeros(0, np.int32),
            scores=np.concatenate(scores).astype(np.float32) if scores else np.zeros(0, np.float32),
        )


def top_k_sparse(
    sim: sp.csr_matrix, k: int, row_offset: int = 0, min_score: float = 0.0
) -> tuple[IntArray, FloatArray, IntArray]:
    """Each row's ``k`` largest entries above ``min_score`` (the diagonal left out).

    ``row_offset`` is the item index of row 0 (chunks of a larger matrix). Returns
    ``(row_counts, scores, column_indices)``, each row's entries best first.
    """
    sim = sim.tocoo()
    rows, cols, vals = sim.row, sim.col, sim.data
    keep = (vals > min_score) & (cols != rows + row_offset)
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    order = np.lexsort((cols, -vals, rows))  # by row, best first, ties by column
    rows, cols, vals = rows[order], cols[order], vals[order]
    starts = np.searchsorted(rows, np.arange(sim.shape[0]))
    rank = np.arange(len(rows)) - starts[rows]
    top = rank < k
    counts = np.bincount(rows[top], minlength=sim.shape[0]).astype(np.int32)
    return counts, vals[top].astype(np.float32), cols[top].astype(np.int32)


def top_k_dense(
    sim: npt.NDArray[np.floating], k: int, row_offset: int = 0, by_magnitude: bool = False
) -> tuple[IntArray, FloatArray, IntArray]:
    """Like `top_k_sparse` for a dense block; ``by_magnitude`` keeps the largest |values|
    (negative weights matter for linear models such as EASE). Zeros are dropped."""
    sim = np.array(sim, dtype=np.float32, copy=True)
    n_rows, n_cols = sim.shape
    diag = np.arange(n_rows) + row_offset
    inside = diag < n_cols
    sim[np.arange(n_rows)[inside], diag[inside]] = 0.0
    key = np.abs(sim) if by_magnitude else sim
    k = min(k, n_cols)
    part = (
        np.argpartition(-key, k - 1, axis=1)[:, :k]
        if k < n_cols
        else np.tile(np.arange(n_cols), (n_rows, 1))
    )
    part_key = np.take_along_axis(key, part, axis=1)
    order = np.argsort(-part_key, axis=1, kind="stable")
    cols = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(sim, cols, axis=1)
    keep = (np.take_along_axis(key, cols, axis=1) > 0) & np.isfinite(vals)
    counts = keep.sum(axis=1).astype(np.int32)
    return counts, vals[keep].astype(np.float32), cols[keep].astype(np.int32)


def cosine_neighbours(
    matrix: sp.spmatrix,
    k: int,
    *,
    min_support: float = 0.0,
    chunk: int = 2048,
    progress: Callable[[float], None] | None = None,
) -> Iterator[tuple[IntArray, FloatArray, IntArray]]:
    """Top-k cosine neighbours between the columns of ``matrix`` (rows are shoppers, orders
    or sessions; columns are items), yielded in chunks of item rows for `NeighbourTable`.

    Pairs whose raw co-occurrence (the dot product before normalising: a count, for a 0/1
    matrix) is below ``min_support`` are dropped, so one coincidence is not a neighbour.
    """
    csc = sp.csc_matrix(matrix, dtype=np.float32)
    norms = np.sqrt(np.asarray(csc.multiply(csc).sum(axis=0)).ravel())
    inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    items_by_rows = csc.T.tocsr()  # items x rows
    n = items_by_rows.shape[0]
    for start in range(0, n, chunk):
        block = sp.csr_matrix(items_by_rows[start : start + chunk] @ csc)
        if min_support > 0:
            block.data[block.data < min_support] = 0
            block.eliminate_zeros()
        rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
        block.data *= inverse[rows + start] * inverse[block.indices]
        yield top_k_sparse(block, k, row_offset=start)
        if progress is not None:
            progress(min(1.0, (start + chunk) / max(n, 1)))


@dataclass(frozen=True, eq=False)
class NeighbourState:
    """The trained state of a neighbour-list strategy (also viewed, bought together, session):
    one `NeighbourTable`, stored as arrays under the ``neighbours.`` prefix."""

    neighbours: NeighbourTable

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        return self.neighbours.to_arrays("neighbours.")

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, npt.NDArray[Any]]) -> Self:
        return cls(NeighbourTable.from_arrays(arrays, "neighbours."))
