"""Session: what to show next, from what this session just viewed or carted.

Training walks every browsing session in time order and pairs each product with the ones
viewed within ``window`` steps of it (closer steps weigh more), normalised by how many sessions
saw each product; each product keeps its ``neighbours`` best. Events without a session id are
cut into sessions at gaps longer than ``gap_minutes``. Serving seeds with the session's latest
products (the product on the page first), the newest counting most, so a first-time visitor
gets personal results after two clicks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from shopfront import (
    NONE,
    Candidate,
    Interactions,
    Reason,
    RequestContext,
    Slot,
    StrategySetup,
    TrainingData,
)
from shopfront.plugins.recommenders.base import TrainedRecommender, pool_size, titles
from shopfront.plugins.recommenders.config import knob
from shopfront.plugins.recommenders.history import because, personal
from shopfront.plugins.recommenders.neighbours import NeighbourState, NeighbourTable, top_k_sparse

NAME = "session"
BROWSING = ("view", "click", "add_to_cart", "purchase")


@dataclass(frozen=True)
class SessionConfig:
    neighbours: int = knob(50, "Neighbours kept per product.", min=1, max=1000)
    window: int = knob(5, "Steps apart two products of a session may be and still pair.", min=1)
    gap_minutes: float = knob(30.0, "Inactivity that ends a session without a session id.", min=1.0)
    seeds: int = knob(5, "Latest session products used as seeds.", min=1)
    seed_half_life: float = knob(1.0, "Recency half-life of the seeds, in steps.", min=0.1)


class SessionNeighbours(TrainedRecommender[NeighbourState]):
    state_type = NeighbourState

    def __init__(self, setup: StrategySetup) -> None:
        super().__init__(setup)
        self.config = setup.config_as(SessionConfig)

    def train(self, data: TrainingData) -> NeighbourState:
        events = data.interactions
        session, item = self.sequences(events)
        n = events.n_items
        pairs = sp.csr_matrix((n, n), dtype=np.float32)
        for step in range(1, self.config.window + 1):
            same = (session[step:] == session[:-step]) & (item[step:] != item[:-step])
            a, b = item[:-step][same], item[step:][same]
            weight = np.full(len(a), 1.0 / step, dtype=np.float32)
            pairs = pairs + sp.csr_matrix(
                (np.r_[weight, weight], (np.r_[a, b], np.r_[b, a])), shape=(n, n)
            )
            data.report(NAME, 0.5 * step / self.config.window)
        # Normalise by popularity (sessions per product) so best sellers do not pair with all.
        seen = np.zeros(n)
        if len(item):
            sessions_per_item = np.unique(np.stack([session, item], axis=1), axis=0)[:, 1]
            seen = np.bincount(sessions_per_item, minlength=n).astype(np.float64)
        scale = np.divide(1.0, np.sqrt(seen), out=np.zeros(n), where=seen > 0)
        pairs = sp.csr_matrix(sp.diags(scale) @ pairs @ sp.diags(scale), dtype=np.float32)
        table = NeighbourTable.from_rows(
            events.item_ids, iter([top_k_sparse(pairs, self.config.neighbours)])
        )
        data.report(NAME, 1.0)
        return NeighbourState(table)

    def sequences(self, events: Interactions) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
        """(session, item) of every browsing event, grouped by session in time order, with
        immediate repeats of one product collapsed."""
        keep = events.of_kinds(*BROWSING)
        user, when = events.user[keep], events.timestamp[keep]
        item, session = events.item[keep], events.session[keep].astype(np.int64)
        # Events without a session id: a new session after each long gap, per shopper.
        loose = session == NONE
        order = np.lexsort((when, user))
        gap = np.r_[
            True,
            (user[order][1:] != user[order][:-1])
            | (np.diff(when[order]) > self.config.gap_minutes * 60),
        ]
        derived = np.empty(len(order), dtype=np.int64)
        derived[order] = np.cumsum(gap) + len(events.session_ids)
        session = np.where(loose, derived, session)
        order = np.lexsort((when, session))
        session, item = session[order], item[order]
        fresh = np.r_[True, (session[1:] != session[:-1]) | (item[1:] != item[:-1])][: len(item)]
        return session[fresh], item[fresh]

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        state = self.state
        if state is None or not personal(ctx):
            return []
        recent = list(
            dict.fromkeys(([ctx.product_id] if ctx.product_id else []) + list(ctx.session_recent))
        )[: self.config.seeds]
        if not recent:
            return []
        seeds = [
            (pid, 0.5 ** (rank / self.config.seed_half_life)) for rank, pid in enumerate(recent)
        ]
        carted = {line.product_id for line in ctx.cart_lines}
        scored = state.neighbours.aggregate(seeds, frozenset(carted), pool_size(slot))
        if not scored:
            return []
        names = await titles(ctx, [seeds[s.best_seed][0] for s in scored])
        found = []
        for s in scored:
            seed_id = seeds[s.best_seed][0]
            action = "carted" if seed_id in carted else "viewed"
            text = because(action, names.get(seed_id, "a product you looked at"))
            found.append(Candidate(s.product_id, s.score, (Reason("SESSION", text),)))
        return found


def create(setup: StrategySetup) -> SessionNeighbours:
    return SessionNeighbours(setup)
