"""Sparse matrices built from the training events, shared by the collaborative strategies."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from shopfront import KIND, NONE, Interactions

DAY = 86_400.0


def shopper_items(
    events: Interactions, weights: Mapping[str, float], max_per_shopper: int = 0
) -> sp.csr_matrix:
    """Shoppers x items: each cell holds the strongest weighted event between the two.

    A cell with any negative event (a low star rating) stays empty: the shopper said they do
    not like the product, whatever else they did with it. ``max_per_shopper`` > 0 keeps only
    each shopper's most recent distinct items, so one crawler-like shopper cannot dominate the
    co-occurrences (or the training time).
    """
    weight = events.kind_weights(weights)
    keep = (weight > 0) & (events.item != NONE)
    disliked = (weight < 0) & (events.item != NONE)
    if disliked.any():
        cells = events.user.astype(np.int64) * max(events.n_items, 1) + events.item
        keep &= ~np.isin(cells, cells[disliked])
    if not keep.any():
        return sp.csr_matrix((events.n_users, events.n_items), dtype=np.float32)
    user, item, w, when = events.user[keep], events.item[keep], weight[keep], events.timestamp[keep]
    # Per (shopper, item): the strongest weight, and the latest time for the recency cut.
    order = np.lexsort((w, item, user))
    user, item, w, when = user[order], item[order], w[order], when[order]
    last = np.r_[(user[1:] != user[:-1]) | (item[1:] != item[:-1]), True]
    latest = np.maximum.reduceat(when, _starts(last)) if len(when) else when
    user, item, w = user[last], item[last], w[last]
    if max_per_shopper > 0 and len(user):
        recent = np.lexsort((-latest, user))
        starts = np.searchsorted(user[recent], user[recent], side="left")
        rank = np.arange(len(recent)) - starts
        chosen = recent[rank < max_per_shopper]
        user, item, w = user[chosen], item[chosen], w[chosen]
    return sp.csr_matrix(
        (w.astype(np.float32), (user, item)), shape=(events.n_users, events.n_items)
    )


def order_items(events: Interactions) -> sp.csr_matrix:
    """Orders x items (1 = the order contained the item). Purchases without an order id are
    grouped per shopper and day, which is what one checkout usually looks like."""
    bought = (events.kind == KIND["purchase"]) & (events.item != NONE)
    order = events.order[bought].astype(np.int64)
    loose = order == NONE
    day = (events.timestamp[bought] // DAY).astype(np.int64)
    n_orders = len(events.order_ids)
    fallback = (
        np.unique(
            np.stack([events.user[bought][loose], day[loose]], axis=1), axis=0, return_inverse=True
        )[1].ravel()
        if loose.any()
        else np.zeros(0, dtype=np.int64)
    )
    order[loose] = n_orders + fallback
    rows = int(order.max()) + 1 if len(order) else 0
    matrix = sp.csr_matrix(
        (np.ones(len(order), dtype=np.float32), (order, events.item[bought])),
        shape=(rows, events.n_items),
    )
    matrix.data[:] = 1.0  # an item bought twice in one order is still one co-purchase
    return matrix


def _starts(is_last: npt.NDArray[np.bool_]) -> npt.NDArray[np.intp]:
    """Start offsets of the runs that end where ``is_last`` is true."""
    starts: npt.NDArray[np.intp] = np.r_[0, np.flatnonzero(is_last)[:-1] + 1]
    return starts
