"""The served-slot log: what each recommendation id showed, written in batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from shopfront.platform.batch_writer import BatchWriter
from shopfront.platform.store import InsertOne, PyMongoError, Store

log = logging.getLogger(__name__)

RECOMMENDATIONS = "recommendations"
RECORD_INTERVAL_S = 0.1  # served slots are written at most this long after they are served
RECORD_BATCH = 1000  # ... or as soon as this many are waiting
RECORD_BACKLOG = 20_000  # beyond this (the database is down) the oldest are dropped


# -- recording what was served -------------------------------------------------------------


class RecommendationLog:
    """Writes served slots to ``recommendations`` in batches: one ``insert_many`` per
    `RECORD_INTERVAL_S` (or per `RECORD_BATCH` slots) across all requests, off the request
    path. Attribution reads these later, so a delay of a fraction of a second costs nothing,
    while one write per request would double the storefront's database load."""

    def __init__(self, store: Store, writer: BatchWriter | None = None) -> None:
        self._store = store
        # The instance's background writer, when running: served slots go to its queue.
        self.writer = writer
        self._buffer: list[dict[str, Any]] = []
        self._timer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.dropped = 0

    def add(self, docs: list[dict[str, Any]]) -> None:
        if self.writer is not None:
            self.writer.submit(RECOMMENDATIONS, [InsertOne(d) for d in docs])
            return
        self._buffer.extend(docs)
        overflow = len(self._buffer) - RECORD_BACKLOG
        if overflow > 0:
            del self._buffer[:overflow]
            self.dropped += overflow
            log.warning("recommendation log backlog full: dropped %d served slots", overflow)
        if self._timer is None or self._timer.done():
            delay = 0.0 if len(self._buffer) >= RECORD_BATCH else RECORD_INTERVAL_S
            self._timer = asyncio.get_running_loop().create_task(self._flush_after(delay))

    async def _flush_after(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        await self.flush()

    async def flush(self) -> None:
        """Write everything waiting now (one batch at a time)."""
        async with self._lock:
            while self._buffer:
                batch, self._buffer = self._buffer[:RECORD_BATCH], self._buffer[RECORD_BATCH:]
                try:
                    await self._store.collection(RECOMMENDATIONS).insert_many(batch, ordered=False)
                except PyMongoError as exc:
                    log.warning("could not record %d served slots: %s", len(batch), exc)

    async def close(self) -> None:
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        await self.flush()
