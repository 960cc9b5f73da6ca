"""Writes off the request path: one background writer per instance, in batches.

What a storefront answer records (served slots, experiment exposures and first-exposure
assignments) is handed to `BatchWriter.submit`, which queues it and returns at once; the
writer sends each collection's queued operations as one unordered ``bulk_write`` every
``interval_s`` (or as soon as ``batch_size`` are waiting). Nothing a shopper waits for ever
blocks on it.

The queue is bounded (``max_pending`` operations). When it is full (the database is down or
far too slow) new writes are dropped, never waited for: counted in
``shopfront_write_queue_dropped_total{collection}`` and logged (at most once per
``warn_every_s``). `aclose` (shutdown) sends everything still queued.

Operations are upserts keyed on a natural id or inserts with a unique id, so a batch retried
after a duplicate-key race changes nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from shopfront.platform.metrics import Metrics
from shopfront.platform.store import BulkWriteError, PyMongoError, Store, UpdateOne

log = logging.getLogger(__name__)

DUPLICATE_KEY = 11000


class BatchWriter:
    """A bounded queue of write operations per collection, flushed in the background."""

    def __init__(
        self,
        store: Store,
        *,
        max_pending: int = 50_000,
        batch_size: int = 1000,
        interval_s: float = 0.1,
        metrics: Metrics | None = None,
        warn_every_s: float = 10.0,
    ) -> None:
        if max_pending < 1 or batch_size < 1 or interval_s <= 0:
            raise ValueError("max_pending and batch_size must be positive, interval_s above 0")
        self._store = store
        self.max_pending = max_pending
        self.batch_size = batch_size
        self.interval_s = interval_s
        self._metrics = metrics
        self._warn_every_s = warn_every_s
        self._queues: dict[str, list[Any]] = {}
        self._pending = 0
        self._timer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._last_warning = float("-inf")
        self.dropped = 0
        self.written = 0
        self.closed = False

    @property
    def pending(self) -> int:
        return self._pending

    def submit(self, collection: str, ops: Sequence[Any]) -> bool:
        """Queue ``ops`` (pymongo `InsertOne` / `UpdateOne`) for ``collection``; returns at
        once. False when the queue was full or the writer is closed and they were dropped."""
        if not ops:
            return True
        if self.closed or self._pending + len(ops) > self.max_pending:
            self._drop(collection, len(ops))
            return False
        self._queues.setdefault(collection, []).extend(ops)
        self._pending += len(ops)
        self._gauge()
        if self._timer is None or self._timer.done():
            delay = 0.0 if self._pending >= self.batch_size else self.interval_s
            self._timer = asyncio.get_running_loop().create_task(self._flush_after(delay))
        return True

    def _drop(self, collection: str, n: int) -> None:
        self.dropped += n
        if self._metrics is not None:
            self._metrics.write_queue_dropped.labels(collection).inc(n)
        now = time.monotonic()
        if now - self._last_warning >= self._warn_every_s:
            self._last_warning = now
            log.warning(
                "background writer queue full (%d waiting, limit %d): dropped %d writes to %s "
                "(%d dropped so far)",
                self._pending,
                self.max_pending,
                n,
                collection,
                self.dropped,
            )

    def _gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.write_queue_depth.set(self._pending)

    async def _flush_after(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        await self.flush()

    async def flush(self) -> None:
        """Send everything queued now, a batch at a time per collection."""
        async with self._lock:
            while self._queues:
                collection, queue = next(iter(self._queues.items()))
                batch = queue[: self.batch_size]
                del queue[: self.batch_size]
                if not queue:
                    del self._queues[collection]
                self._pending -= len(batch)
                self._gauge()
                await self._send(collection, batch)

    async def _send(self, collection: str, batch: list[Any]) -> None:
        coll = self._store.collection(collection)
        outcome = "ok"
        try:
            try:
                await coll.bulk_write(batch, ordered=False)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(e.get("code") != DUPLICATE_KEY for e in errors):
                    raise
                # An upsert that lost a race on a unique index finds the winner's document
                # on a retry; an insert of an id already there is the same write again.
                retry = [
                    batch[e["index"]] for e in errors if isinstance(batch[e["index"]], UpdateOne)
                ]
                if retry:
                    with contextlib.suppress(BulkWriteError):
                        await coll.bulk_write(retry, ordered=False)
            self.written += len(batch)
        except PyMongoError as exc:
            outcome = "error"
            log.warning(
                "background writer: %d writes to %s failed: %s", len(batch), collection, exc
            )
        if self._metrics is not None:
            self._metrics.write_batches.labels(collection, outcome).inc()

    async def aclose(self) -> None:
        """Stop taking writes and send what is queued (shutdown; bounded by the caller)."""
        self.closed = True
        timer, self._timer = self._timer, None
        if timer is not None and not timer.done():
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        await self.flush()
