"""Behaviour events as columns: what recommenders train on.

A million event documents as Python dicts cost gigabytes; as numpy columns they cost tens of
megabytes. `Interactions` holds the events of a training window column by column (shopper,
product, event type, time, quantity, order, session, rating), with the string ids interned into
small vocabularies. It is also a read-only ``Sequence`` of event mappings, so code written
against plain event documents (``TrainingData.events``) keeps working.

Shoppers are keyed by ``user_id``; an anonymous event is keyed by ``"session:" + session_id``.
Products are indexed catalog first, in catalog order, so ``item == i`` for ``i < n_catalog``
is ``products[i]``; ids only seen in events (deleted products) follow.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, overload

import numpy as np
import numpy.typing as npt
from shopfront.platform.vocabulary import EVENT_TYPES

KIND: Mapping[str, int] = {name: code for code, name in enumerate(EVENT_TYPES)}
NONE = -1  # "no product / order / session" in an index column
# A rating event's weight factor by its stars (index 0: no stars given, the type's weight).
STAR_FACTORS: npt.NDArray[np.float64] = np.array([1.0, -1.0, -0.5, 0.25, 1.0, 1.5])

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]


def shopper_key(user_id: str | None, session_id: str | None) -> str | None:
    """The key a shopper's events are grouped by: the user id, else the session."""
    if user_id:
        return user_id
    if session_id:
        return "session:" + session_id
    return None


@dataclass(frozen=True, eq=False)
class Interactions(Sequence[Mapping[str, Any]]):
    """Events of one window as parallel columns, oldest first.

    Columns (one entry per event): ``user`` (index into ``user_ids``), ``item`` (index into
    ``item_ids``, `NONE` for events without a product), ``kind`` (index into `EVENT_TYPES`),
    ``timestamp`` (Unix seconds), ``quantity``, ``order`` and ``session`` (indexes into
    ``order_ids`` / ``session_ids`` or `NONE`), ``rating`` (0 when absent).
    """

    item_ids: tuple[str, ...]
    user_ids: tuple[str, ...]
    order_ids: tuple[str, ...]
    session_ids: tuple[str, ...]
    user: IntArray
    item: IntArray
    kind: npt.NDArray[np.int8]
    timestamp: FloatArray
    quantity: IntArray
    order: IntArray
    session: IntArray
    rating: npt.NDArray[np.int8]
    n_catalog: int

    # -- shape -----------------------------------------------------------------------------

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return int(self.user.shape[0])

    @overload
    def __getitem__(self, index: int) -> Mapping[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Mapping[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> Mapping[str, Any] | Sequence[Mapping[str, Any]]:
        if isinstance(index, slice):
            return [self._event(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._event(index)

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        return (self._event(i) for i in range(len(self)))

    def _event(self, i: int) -> Mapping[str, Any]:
        """Event ``i`` as the event document fields recommenders use."""
        user = self.user_ids[int(self.user[i])]
        session = int(self.session[i])
        item = int(self.item[i])
        order = int(self.order[i])
        return {
            "type": EVENT_TYPES[int(self.kind[i])],
            "user_id": None if user.startswith("session:") else user,
            "session_id": self.session_ids[session] if session != NONE else None,
            "timestamp": datetime.fromtimestamp(float(self.timestamp[i]), UTC),
            "product_id": self.item_ids[item] if item != NONE else None,
            "quantity": int(self.quantity[i]),
            "order_id": self.order_ids[order] if order != NONE else None,
            "rating": int(self.rating[i]) or None,
        }

    # -- selections ------------------------------------------------------------------------

    def where(self, mask: npt.NDArray[np.bool_]) -> Interactions:
        """The events where ``mask`` is true (vocabularies unchanged, so indexes still agree)."""
        return Interactions(
            item_ids=self.item_ids,
            user_ids=self.user_ids,
            order_ids=self.order_ids,
            session_ids=self.session_ids,
            user=self.user[mask],
            item=self.item[mask],
            kind=self.kind[mask],
            timestamp=self.timestamp[mask],
            quantity=self.quantity[mask],
            order=self.order[mask],
            session=self.session[mask],
            rating=self.rating[mask],
            n_catalog=self.n_catalog,
        )

    def of_kinds(self, *kinds: str) -> npt.NDArray[np.bool_]:
        """A mask of the events of the given types that name a product."""
        codes = [KIND[k] for k in kinds]
        mask: npt.NDArray[np.bool_] = np.isin(self.kind, codes) & (self.item != NONE)
        return mask

    def kind_weights(self, weights: Mapping[str, float]) -> FloatArray:
        """Each event's weight by its type (types not in ``weights`` weigh 0), a rating's also
        scaled by its stars (`STAR_FACTORS`: one or two stars turn it negative, evidence
        against the product; five make it a strong positive)."""
        table = np.zeros(len(EVENT_TYPES), dtype=np.float64)
        for name, weight in weights.items():
            table[KIND[name]] = weight
        result: FloatArray = table[self.kind.astype(np.intp)] * STAR_FACTORS[self.rating]
        return result

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def from_events(
        cls, events: Iterable[Mapping[str, Any]], product_ids: Sequence[str] = ()
    ) -> Interactions:
        """Columns from event documents (as stored by `shopfront.shoppers.events`), sorted by
        time."""
        builder = InteractionsBuilder(product_ids)
        for event in events:
            builder.add(event)
        return builder.build()


class InteractionsBuilder:
    """Accumulates event documents into columns in bounded chunks (for streaming loads)."""

    CHUNK = 65_536

    def __init__(self, product_ids: Sequence[str] = ()) -> None:
        self._items: dict[str, int] = {pid: i for i, pid in enumerate(product_ids)}
        self._n_catalog = len(self._items)
        self._users: dict[str, int] = {}
        self._orders: dict[str, int] = {}
        self._sessions: dict[str, int] = {}
        self._rows: list[tuple[int, int, int, float, int, int, int, int]] = []
        self._chunks: list[npt.NDArray[Any]] = []
        self.skipped = 0

    @staticmethod
    def _intern(vocab: dict[str, int], key: str | None) -> int:
        if not key:
            return NONE
        index = vocab.get(key)
        if index is None:
            index = vocab[key] = len(vocab)
        return index

    def add(self, event: Mapping[str, Any]) -> bool:
        """Add one event; False (and counted in ``skipped``) when it cannot be used."""
        kind = KIND.get(str(event.get("type", "")))
        user = shopper_key(event.get("user_id"), event.get("session_id"))
        stamp = event.get("timestamp")
        if kind is None or user is None or not isinstance(stamp, datetime):
            self.skipped += 1
            return False
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        rating = event.get("rating")
        self._rows.append(
            (
                self._intern(self._users, user),
                self._intern(self._items, event.get("product_id")),
                kind,
                stamp.timestamp(),
                int(event.get("quantity") or 1),
                self._intern(self._orders, event.get("order_id")),
                self._intern(self._sessions, event.get("session_id")),
                int(rating) if isinstance(rating, int) and 0 < rating <= 5 else 0,
            )
        )
        if len(self._rows) >= self.CHUNK:
            self._flush()
        return True

    def _flush(self) -> None:
        if self._rows:
            self._chunks.append(np.array(self._rows, dtype=np.float64))
            self._rows = []

    def build(self) -> Interactions:
        self._flush()
        table = np.concatenate(self._chunks) if self._chunks else np.zeros((0, 8))
        order = np.argsort(table[:, 3], kind="stable")
        table = table[order]

        def column(i: int) -> IntArray:
            return table[:, i].astype(np.int32)

        return Interactions(
            item_ids=tuple(self._items),
            user_ids=tuple(self._users),
            order_ids=tuple(self._orders),
            session_ids=tuple(self._sessions),
            user=column(0),
            item=column(1),
            kind=table[:, 2].astype(np.int8),
            timestamp=table[:, 3].copy(),
            quantity=column(4),
            order=column(5),
            session=column(6),
            rating=table[:, 7].astype(np.int8),
            n_catalog=self._n_catalog,
        )
