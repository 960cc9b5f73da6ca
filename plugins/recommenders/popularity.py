"""Ranked popular products, overall and per category, from time-decayed weighted events.

A product's popularity is the sum of its events, each weighted by type (a purchase says more
than a view) and halved every ``half_life_days`` before the end of the training window. Lists
are kept for the whole catalog and for every category prefix ("Shoes", "Shoes > Running"), each
cut to the best ``per_list`` active products. With no events at all (a new shop), the newest
products stand in, so a cold start still has something true to show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt
from shopfront import Product, TrainingData
from shopfront.plugins.recommenders.base import Arrays, scalar_text, text_array

ALL = ""  # the list key of the whole catalog
SEPARATOR = " > "


def category_keys(path: Sequence[str]) -> list[str]:
    """Every prefix of a category path, shallowest first: ["Shoes", "Shoes > Running"]."""
    return [SEPARATOR.join(path[: depth + 1]) for depth in range(len(path))]


@dataclass(frozen=True, eq=False)
class PopularityIndex:
    """Best products per list key (`ALL` or a category prefix), best first.

    ``basis`` is "events" normally, "newest" when there were no events to count.
    """

    product_ids: tuple[str, ...]
    keys: tuple[str, ...]
    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int32]
    scores: npt.NDArray[np.float32]
    basis: str = "events"
    _rows: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rows", {key: i for i, key in enumerate(self.keys)})

    def ranked(self, key: str = ALL) -> list[tuple[str, float]]:
        """The list for ``key`` (a category prefix, or `ALL`), best first."""
        row = self._rows.get(key)
        if row is None:
            return []
        lo, hi = int(self.indptr[row]), int(self.indptr[row + 1])
        return [
            (self.product_ids[i], float(s))
            for i, s in zip(self.indices[lo:hi], self.scores[lo:hi], strict=True)
        ]

    def to_arrays(self, prefix: str = "popular.") -> dict[str, npt.NDArray[np.generic]]:
        return {
            f"{prefix}product_ids": text_array(self.product_ids),
            f"{prefix}keys": text_array(self.keys),
            f"{prefix}indptr": self.indptr,
            f"{prefix}indices": self.indices,
            f"{prefix}scores": self.scores,
            f"{prefix}basis": np.array(self.basis),
        }

    @classmethod
    def from_arrays(cls, arrays: Arrays, prefix: str = "popular.") -> PopularityIndex:
        return cls(
            product_ids=tuple(str(s) for s in arrays[f"{prefix}product_ids"]),
            keys=tuple(str(s) for s in arrays[f"{prefix}keys"]),
            indptr=np.asarray(arrays[f"{prefix}indptr"], dtype=np.int64),
            indices=np.asarray(arrays[f"{prefix}indices"], dtype=np.int32),
            scores=np.asarray(arrays[f"{prefix}scores"], dtype=np.float32),
            basis=scalar_text(arrays, f"{prefix}basis") or "events",
        )


def decayed_scores(
    data: TrainingData, event_weights: Mapping[str, float], half_life_days: float
) -> npt.NDArray[np.float64]:
    """Each catalog product's weighted, time-decayed event total at the window's end."""
    events = data.interactions
    n = len(data.products)
    on_catalog = (events.item >= 0) & (events.item < n)
    age_days = (data.window_end.timestamp() - events.timestamp[on_catalog]) / 86_400.0
    weight = events.kind_weights(event_weights)[on_catalog] * 0.5 ** (
        np.maximum(age_days, 0.0) / half_life_days
    )
    totals: npt.NDArray[np.float64] = np.bincount(
        events.item[on_catalog], weights=weight, minlength=n
    ).astype(np.float64)
    return totals


def build_popularity(
    products: Sequence[Product], scores: npt.NDArray[np.float64], per_list: int
) -> PopularityIndex:
    """Rank active products into the overall list and one list per category prefix."""
    basis = "events"
    if not np.any(scores > 0):
        basis = "newest"
        scores = _newness(products)
    active = np.array([p.active for p in products], dtype=bool)
    ranked = [i for i in np.argsort(-scores, kind="stable") if active[i] and scores[i] > 0]
    lists: dict[str, list[int]] = {ALL: []}
    for i in ranked:
        for key in (ALL, *category_keys(products[i].category_path)):
            members = lists.setdefault(key, [])
            if len(members) < per_list:
                members.append(int(i))
    keys = tuple(lists)
    flat = [i for key in keys for i in lists[key]]
    return PopularityIndex(
        product_ids=tuple(p.id for p in products),
        keys=keys,
        indptr=np.r_[0, np.cumsum([len(lists[k]) for k in keys])].astype(np.int64),
        indices=np.array(flat, dtype=np.int32),
        scores=scores[flat].astype(np.float32) if flat else np.zeros(0, np.float32),
        basis=basis,
    )


def _newness(products: Sequence[Product]) -> npt.NDArray[np.float64]:
    """Scores that rank products newest first (catalog order when nothing is dated)."""
    n = len(products)
    stamps = [
        p.created_at.timestamp() if isinstance(p.created_at, datetime) else 0.0 for p in products
    ]
    order = sorted(range(n), key=lambda i: (-stamps[i], i))
    scores = np.zeros(n)
    for rank, i in enumerate(order):
        scores[i] = 1.0 / (rank + 1)
    return scores
