"""What the built-in recommenders share: a fitted model they serve, saved and loaded as arrays.

A trained strategy keeps its whole fitted state in one immutable object. ``fit`` builds a new
state off the event loop and swaps it in with one assignment; so does ``load_model``, which the
model registry calls when another instance trained a newer version. A request reads the state
once, so it is served by one model from start to end, even while a new one arrives.

States save as named numpy arrays (``to_arrays`` / ``from_arrays``): the model registry stores
them as ``.npz`` files in GridFS, with no pickle anywhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import numpy as np
import numpy.typing as npt
from shopfront import Candidate, Reason, RequestContext, Slot, StrategySetup, TrainingData
from shopfront.plugins.recommenders.neighbours import Scored

Arrays = Mapping[str, npt.NDArray[Any]]


class ModelState(Protocol):
    def to_arrays(self) -> dict[str, npt.NDArray[Any]]: ...

    @classmethod
    def from_arrays(cls, arrays: Arrays) -> Self: ...


S = TypeVar("S", bound=ModelState)


class TrainedRecommender(Generic[S]):
    """Base of the trained strategies: subclasses implement `train` and `recommend`."""

    state_type: ClassVar[type[Any]]

    def __init__(self, setup: StrategySetup) -> None:
        self.name = setup.name
        self.log: logging.Logger = setup.log
        self._state: S | None = None

    @property
    def state(self) -> S | None:
        """The fitted model being served (None until trained or loaded)."""
        return self._state

    def train(self, data: TrainingData) -> S:
        """Fit a new state from ``data`` (CPU-bound; runs in a worker thread)."""
        raise NotImplementedError

    async def fit(self, data: TrainingData) -> None:
        self._state = await asyncio.to_thread(self.train, data)

    def dump_model(self) -> dict[str, npt.NDArray[Any]] | None:
        """The fitted state as named arrays, or None when there is none yet."""
        return None if self._state is None else self._state.to_arrays()

    def load_model(self, arrays: Arrays) -> None:
        """Serve the state saved in ``arrays`` from now on (one atomic swap)."""
        self._state = self.state_type.from_arrays(arrays)


def pool_size(slot: Slot) -> int:
    """How many candidates a strategy proposes for ``slot``: more than the slot shows, so the
    blend can still fill it after exclusions and diversity caps, and never unbounded."""
    asked = slot.params.get("pool")
    if isinstance(asked, int) and not isinstance(asked, bool) and asked > 0:
        return min(asked, 1000)
    return min(max(3 * slot.limit, 30), 200)


def text_array(values: Sequence[str]) -> npt.NDArray[np.str_]:
    """Strings as a numpy unicode array (saved without pickle)."""
    return np.array(list(values), dtype=np.str_) if values else np.zeros(0, dtype="<U1")


def scalar_text(arrays: Arrays, key: str) -> str:
    return str(arrays[key][()]) if key in arrays else ""


async def titles(ctx: RequestContext, product_ids: Sequence[str]) -> dict[str, str]:
    """Titles of the products named in reasons: the page's products first, then one batched
    catalog lookup for the rest."""
    wanted = dict.fromkeys(product_ids)
    found = {pid: ctx.products[pid].title for pid in wanted if pid in ctx.products}
    missing = [pid for pid in wanted if pid not in found]
    if missing:
        products = await ctx.catalog.get_many(missing)
        found.update({pid: p.title for pid, p in products.items()})
    return found


def candidate(product_id: str, score: float, code: str, text: str) -> Candidate:
    return Candidate(product_id, score, (Reason(code, text),))


# A seed that gave at least this share of the strongest contribution may be the one named.
NAMED_SEED_SHARE = 0.1


async def named_seeds(
    ctx: RequestContext, scored: Sequence[Scored], seed_ids: Sequence[str]
) -> tuple[list[str | None], dict[str, str]]:
    """For each scored product, the seed its reason names (or None), and the seeds' titles.

    A reason names a seed from the product's own department (the strongest one that gave at
    least `NAMED_SEED_SHARE` of the top contribution): "Because you viewed" a tent reads right
    under a tent, not under a coffee mug. When no seed of its department contributed, None:
    the caller gives a general reason. Products without a category name the strongest seed.
    One batched catalog lookup.
    """
    wanted = {seed_ids[i] for s in scored for i, _ in s.seeds} | {s.product_id for s in scored}
    found = {pid: ctx.products[pid] for pid in wanted if pid in ctx.products}
    missing = [pid for pid in wanted if pid not in found]
    if missing:
        found.update(await ctx.catalog.get_many(missing))
    chosen: list[str | None] = []
    for s in scored:
        product = found.get(s.product_id)
        if product is None or not product.category_path or not s.seeds:
            chosen.append(seed_ids[s.best_seed])
            continue
        top = s.seeds[0][1]
        named = None
        for i, contribution in s.seeds:
            seed = found.get(seed_ids[i])
            if seed is None or contribution < NAMED_SEED_SHARE * top:
                continue
            if seed.category_path[:1] == product.category_path[:1]:
                named = seed.id
                break
        chosen.append(named)
    return chosen, {pid: p.title for pid, p in found.items()}
