"""Erased ids in memory: the storefront's tombstone check without a database round trip.

`ErasedIds` holds the tombstone hashes (`shopfront.shoppers.privacy.tombstone_id`) of every
erased shopper and session, each as its first 64 bits (an int: about a third of the memory of
the hex string; a false match needs a 64-bit collision). It loads them at start-up and then
polls the ``tombstones`` collection every ``SHOPFRONT_TOMBSTONE_REFRESH_SECONDS`` for new ones
(an indexed range read on ``erased_at``), so a request checks a set instead of reading the
database. The instance
that erases adds the ids at once; other instances learn them within one refresh.

Writes that another instance started inside that window are caught by a second deletion:
`sweep_later` erases the shopper's documents again once every instance has refreshed (kept in
memory only, never the id itself in the database).

Money paths and rare writes (redemption, identify, events) read the tombstones collection
directly (`shopfront.shoppers.privacy.erased_users`), which is authoritative.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from shopfront.platform.store import PyMongoError, Store
from shopfront.shoppers import privacy

log = logging.getLogger(__name__)

# A tombstone written with a clock a little behind ours is still seen by the next refresh.
_CLOCK_SKEW = timedelta(minutes=5)


class ErasedIds:
    """The set of erased shopper and session ids (as tombstone hashes) of this instance."""

    def __init__(self, store: Store, *, refresh_seconds: float) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self._hashes: set[int] = set()
        self._seen_until: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self._sweeps: dict[asyncio.Task[None], tuple[str, tuple[str, ...]]] = {}

    def __len__(self) -> int:
        return len(self._hashes)

    def any_erased(self, *ids: str | None) -> bool:
        """Whether any of ``ids`` (None and "" ignored) was erased, as far as this instance
        knows. No I/O."""
        return any(i and _short(privacy.tombstone_id(i)) in self._hashes for i in ids)

    def add(self, ids: Iterable[str]) -> None:
        """Remember ids this instance just erased (before the next refresh sees them)."""
        self._hashes.update(_short(privacy.tombstone_id(i)) for i in ids)

    async def refresh(self) -> int:
        """Read tombstones recorded since the last refresh (all of them the first time);
        returns how many were new."""
        query: dict[str, Any] = {}
        if self._seen_until is not None:
            query = {"erased_at": {"$gte": self._seen_until - _CLOCK_SKEW}}
        docs = await self.store.collection(privacy.TOMBSTONES).find(query).to_list(None)
        before = len(self._hashes)
        for d in docs:
            self._hashes.add(_short(str(d["_id"])))
            at = d.get("erased_at")
            if isinstance(at, datetime) and (self._seen_until is None or at > self._seen_until):
                self._seen_until = at
        return len(self._hashes) - before

    async def start(self) -> None:
        """Load every tombstone (errors propagate: start-up should know), then poll."""
        await self.refresh()
        if self._task is None:
            self._task = asyncio.create_task(self._poll(), name="erased-ids")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await self.refresh()
            except PyMongoError as exc:
                log.warning("tombstone refresh failed, keeping the last set: %s", exc)

    def sweep_later(self, user_id: str, sessions: Iterable[str]) -> None:
        """Erase the shopper's documents again after every instance has refreshed its set
        (two refresh intervals and a second), removing writes that raced the erasure."""
        args = (user_id, tuple(sessions))
        task = asyncio.create_task(self._sweep(*args), name="erasure-sweep")
        self._sweeps[task] = args
        task.add_done_callback(lambda t: self._sweeps.pop(t, None))

    async def _sweep(self, user_id: str, sessions: tuple[str, ...]) -> None:
        await asyncio.sleep(2 * self.refresh_seconds + 1)
        try:
            await privacy.delete_user_data(self.store, user_id, extra_sessions=sessions)
        except PyMongoError as exc:
            log.warning("second erasure pass failed (the first one completed): %s", exc)

    async def close(self) -> None:
        """Stop polling; run pending second passes now rather than dropping them."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        pending = dict(self._sweeps)
        for task in pending:
            task.cancel()
        for task, (user_id, sessions) in pending.items():
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(PyMongoError):
                await privacy.delete_user_data(self.store, user_id, extra_sessions=sessions)
        self._sweeps.clear()


def _short(tombstone: str) -> int:
    return int(tombstone[:16], 16)
