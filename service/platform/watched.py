"""A small collection held in memory on every instance, kept current from the database.

`WatchedCollection` loads every document of one collection (API keys, coupon campaigns: tens
to thousands of documents), then follows a change stream (the embedded server and MongoDB
replica sets have them; a change reaches every instance within milliseconds), or, where the
server has none, reloads every ``poll_interval_s``. Requests read it without a round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, Literal

from shopfront.platform.store import OperationFailure, PyMongoError, Store, open_change_stream

log = logging.getLogger(__name__)

Mode = Literal["starting", "change_stream", "polling", "stopped"]
_RETRY_S = 1.0
_DOC_OPS = ("insert", "update", "replace")  # the events that carry a fullDocument


class Followed(ABC):
    """Held in memory and kept current: loaded once, then a change stream (``_open``,
    ``apply_change``), or, on a server without one, ``poll_once`` every ``poll_interval_s``.
    A broken stream is reopened before the reload, so nothing written in between is missed.
    Subclasses set ``name``, ``_store``, ``_use_streams`` and ``poll_interval_s``."""

    name: str
    _store: Store
    _use_streams: bool
    poll_interval_s: float
    mode: Mode = "starting"
    _task: asyncio.Task[None] | None = None

    @abstractmethod
    async def reload(self) -> None:
        """Load everything again."""

    @abstractmethod
    def apply_change(self, change: Mapping[str, Any]) -> None:
        """Apply one change stream event."""

    @abstractmethod
    async def _open(self) -> Any:
        """Open the change stream."""

    async def poll_once(self) -> None:
        """Catch up without a change stream (a full reload unless a subclass knows better)."""
        await self.reload()

    async def start(self) -> None:
        stream = None
        first = None
        try:
            if not self._use_streams:
                raise OperationFailure("change streams switched off")
            stream = await self._open()
            first = await stream.try_next()  # establishes the cursor before the load
        except OperationFailure as exc:
            log.info("%s: no change streams (%s); polling", self.name, exc)
            if stream is not None:
                await stream.close()
            stream = None
        await self.reload()
        if first is not None:
            self.apply_change(first)
        self.mode = "change_stream" if stream is not None else "polling"
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._follow(stream) if stream else self._poll())

    async def close(self) -> None:
        self.mode = "stopped"
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self, stream: Any) -> None:
        while True:
            try:
                try:
                    while True:
                        change = await stream.try_next()
                        if change is not None:
                            self.apply_change(change)
                        else:
                            await asyncio.sleep(0.05)
                finally:
                    await stream.close()
            except PyMongoError as exc:
                log.warning("%s change stream broke (%s); reloading", self.name, exc)
            while True:  # reopen first, then reload: nothing written in between is missed
                await asyncio.sleep(_RETRY_S)
                try:
                    stream = await self._open()
                    first = await stream.try_next()
                    await self.reload()
                    if first is not None:
                        self.apply_change(first)
                    break
                except PyMongoError as exc:
                    log.warning("%s: cannot resume yet (%s)", self.name, exc)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                await self.poll_once()
            except PyMongoError as exc:
                log.warning("%s poll failed: %s", self.name, exc)


class WatchedCollection(Followed):
    """Every document of ``name`` by ``_id``, and by ``index_by`` when given."""

    def __init__(
        self,
        store: Store,
        name: str,
        *,
        index_by: str | None = None,
        match: Mapping[str, Any] | None = None,
        poll_interval_s: float = 1.0,
        change_streams: bool = True,
    ) -> None:
        self._store = store
        self.name = name
        self._index_by = index_by
        # Only documents with these field values are held (equality on top-level fields).
        self._match = dict(match or {})
        self.poll_interval_s = poll_interval_s
        self._use_streams = change_streams
        self._docs: dict[Any, dict[str, Any]] = {}
        self._index: dict[Any, Any] = {}
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.mode: Mode = "starting"

    def get(self, doc_id: Any) -> dict[str, Any] | None:
        return self._docs.get(doc_id)

    def find_by(self, value: Any) -> dict[str, Any] | None:
        """The document whose ``index_by`` field is ``value``."""
        doc_id = self._index.get(value)
        return self._docs.get(doc_id) if doc_id is not None else None

    def values(self) -> list[dict[str, Any]]:
        return list(self._docs.values())

    async def wait_until(self, done: Callable[[WatchedCollection], bool]) -> None:
        """Return once ``done(self)`` holds, checked after every change (callers bound it)."""
        while not done(self):
            self._changed.clear()
            await self._changed.wait()

    # -- keeping current -----------------------------------------------------------------

    def put(self, doc: Mapping[str, Any]) -> None:
        """Hold ``doc`` now (a read-through, or this instance's own write)."""
        old = self._docs.get(doc["_id"])
        if old is not None and self._index_by is not None:
            self._index.pop(old.get(self._index_by), None)
        self._docs[doc["_id"]] = dict(doc)
        if self._index_by is not None and doc.get(self._index_by) is not None:
            self._index[doc[self._index_by]] = doc["_id"]
        self._changed.set()

    def _drop(self, doc_id: Any) -> None:
        old = self._docs.pop(doc_id, None)
        if old is not None and self._index_by is not None:
            self._index.pop(old.get(self._index_by), None)
        self._changed.set()

    async def reload(self) -> None:
        docs = await self._store.collection(self.name).find(self._match).to_list(None)
        self._docs, self._index = {}, {}
        for doc in docs:
            self.put(doc)
        self._changed.set()

    def apply_change(self, change: Mapping[str, Any]) -> None:
        op = change.get("operationType")
        if op in _DOC_OPS:
            doc = change.get("fullDocument")
            if doc is not None:
                self.put(doc)
        elif op == "delete":
            self._drop(change.get("documentKey", {}).get("_id"))
        elif op in ("drop", "dropDatabase", "rename", "invalidate"):
            self._docs, self._index = {}, {}
            self._changed.set()

    async def _open(self) -> Any:
        pipeline: list[dict[str, Any]] = []
        if self._match:
            wanted = {f"fullDocument.{k}": v for k, v in self._match.items()}
            pipeline = [{"$match": {"$or": [{"operationType": {"$nin": list(_DOC_OPS)}}, wanted]}}]
        return await open_change_stream(
            self._store.collection(self.name),
            pipeline,
            full_document="updateLookup",
            max_await_time_ms=250,
        )
