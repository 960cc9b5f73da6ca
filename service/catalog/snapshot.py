"""The catalog in memory: every instance serves products from its own snapshot.

`CatalogSnapshot.start()` opens a change stream on ``products`` (the embedded server and
MongoDB replica sets have them), loads the whole catalog once, then applies every insert,
update, replace and delete the stream reports, usually within milliseconds. Where the server
has no change streams it polls instead (``poll_interval_s``): a product whose ``updated_at``
moved is re-read; a changed count (a delete) reloads the catalog. Either way a change made on
any instance is served by every instance within ``2 s``.

Requests read it without a round trip: `get_many` for the storefront and pricing, `page` for
the ``products`` query. Ids the snapshot does not know yet (a product written a moment ago,
before its change arrived) are read through once (`lookup`). A writer on this instance calls
`refresh(ids)` after its write, so its own next answer already shows it.

Compact: product ids, brands, currencies and category names are interned (one string object
each, however many products share it), and the sorted id index is one list rebuilt only after a
change.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from shopfront.catalog.products import (
    Product,
    ProductFilter,
    ProductPage,
    decode_cursor,
    encode_cursor,
)
from shopfront.platform.money import Money
from shopfront.platform.store import (
    Store,
    open_change_stream,
)
from shopfront.platform.watched import Followed, Mode

log = logging.getLogger(__name__)

LOAD_PAGE = 5000  # products per read when loading the whole catalog


def _compact(doc: Mapping[str, Any]) -> Product:
    """A stored product, with its repeated strings interned."""
    p = Product.from_doc(doc)
    intern = sys.intern
    return Product(
        id=intern(p.id),
        title=p.title,
        price=Money(p.price.amount, intern(p.price.currency)),
        description=p.description,
        category_path=tuple(intern(c) for c in p.category_path),
        brand=intern(p.brand),
        tags=tuple(intern(t) for t in p.tags),
        stock=p.stock,
        active=p.active,
        image_url=p.image_url,
        attributes=p.attributes,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


class CatalogSnapshot(Followed):
    """One instance's in-memory catalog, kept current from the ``products`` collection."""

    def __init__(
        self, store: Store, *, poll_interval_s: float = 1.0, change_streams: bool = True
    ) -> None:
        self._store = store
        self.name = "catalog"
        self.poll_interval_s = poll_interval_s
        self._use_streams = change_streams
        self._changed = asyncio.Event()
        self._by_id: dict[str, Product] = {}
        self._key_of: dict[Any, str] = {}  # stored _id -> product id (deletes name only _id)
        self._sorted: list[str] | None = []  # every id in order; None: rebuild on next read
        # Per currency: active, in-stock products by (price, id), and their prices (bisect).
        self._priced: dict[str, tuple[list[int], list[Product]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_update: datetime | None = None
        self.mode: Mode = "starting"
        self.changes_applied = 0

    # -- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, product_id: str) -> Product | None:
        return self._by_id.get(product_id)

    def get_many(self, ids: Iterable[str]) -> dict[str, Product]:
        """Known products by id (inactive ones included: callers decide)."""
        by_id = self._by_id
        return {i: p for i in ids if (p := by_id.get(i)) is not None}

    async def lookup(self, ids: Sequence[str]) -> dict[str, Product]:
        """`get_many`, reading ids the snapshot does not know through to the database once
        (a product stored a moment ago, whose change has not arrived yet)."""
        found = self.get_many(ids)
        missing = [i for i in dict.fromkeys(ids) if i not in found]
        if missing:
            for doc in await self._store.products.find({"id": {"$in": missing}}).to_list(None):
                product = self._put(doc)
                found[product.id] = product
        return found

    async def wait_until(self, done: Callable[[CatalogSnapshot], bool]) -> None:
        """Return once ``done(self)`` holds, checking after every change applied (callers
        bound it with a timeout)."""
        while not done(self):
            self._changed.clear()
            await self._changed.wait()

    def in_price_order(self, currency: str) -> tuple[list[int], list[Product]]:
        """Active, in-stock products in ``currency`` by (price, id), and their prices (for
        `bisect`): nudge suggestions walk it from the missing amount."""
        if self._priced is None:
            groups: dict[str, list[Product]] = {}
            for p in self._by_id.values():
                if p.active and p.stock > 0:
                    groups.setdefault(p.price.currency, []).append(p)
            priced = {}
            for cur, items in groups.items():
                items.sort(key=lambda p: (p.price.amount, p.id))
                priced[cur] = ([p.price.amount for p in items], items)
            self._priced = priced
        return self._priced.get(currency, ([], []))

    def _ids(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self._by_id)
        return self._sorted

    def page(self, flt: ProductFilter, first: int, after: str | None = None) -> ProductPage:
        """One page of products in id order (the ``products`` query), keyset-paginated like
        `catalog.products.list_products`. Raises `CursorError` for a foreign cursor."""
        last_id = decode_cursor(after) if after is not None else None
        if flt.ids is not None:
            candidates: Sequence[str] = sorted(set(flt.ids))
        else:
            candidates = self._ids()
        start = bisect.bisect_right(candidates, last_id) if last_id is not None else 0
        items: list[Product] = []
        for i in range(start, len(candidates)):
            p = self._by_id.get(candidates[i])
            if p is not None and flt.matches(p):
                items.append(p)
                if len(items) > first:
                    break
        has_next = len(items) > first
        items = items[:first]
        return ProductPage(items, has_next, encode_cursor(items[-1].id) if items else None)

    # -- keeping current -----------------------------------------------------------------

    def _put(self, doc: Mapping[str, Any]) -> Product:
        product = _compact(doc)
        self._priced = None
        if product.id not in self._by_id:
            self._sorted = None
        self._by_id[product.id] = product
        if "_id" in doc:
            self._key_of[doc["_id"]] = product.id
        if product.updated_at is not None and (
            self._last_update is None or product.updated_at > self._last_update
        ):
            self._last_update = product.updated_at
        self._changed.set()
        return product

    def _drop(self, product_id: str) -> None:
        if self._by_id.pop(product_id, None) is not None:
            self._sorted = self._priced = None
        self._changed.set()

    async def refresh(self, ids: Sequence[str]) -> None:
        """Re-read ``ids`` now (this instance just wrote them): stored ones are replaced,
        deleted ones dropped."""
        wanted = list(dict.fromkeys(str(i) for i in ids))
        docs = await self._store.products.find({"id": {"$in": wanted}}).to_list(None)
        for doc in docs:
            self._put(doc)
        for gone in set(wanted) - {d["id"] for d in docs}:
            self._drop(gone)

    async def reload(self) -> None:
        """Read the whole catalog (start-up, and after the stream broke)."""
        by_id: dict[str, Product] = {}
        key_of: dict[Any, str] = {}
        last: datetime | None = None
        # Batches of LOAD_PAGE, each getMore its own operation under the per-operation
        # deadline; no sort (the embedded server would sort the whole catalog in memory).
        async for doc in self._store.products.find({}).batch_size(LOAD_PAGE):
            p = _compact(doc)
            by_id[p.id] = p
            key_of[doc["_id"]] = p.id
            if p.updated_at is not None and (last is None or p.updated_at > last):
                last = p.updated_at
        self._by_id, self._key_of, self._last_update = by_id, key_of, last
        self._sorted = self._priced = None
        self._changed.set()

    def apply_change(self, change: Mapping[str, Any]) -> None:
        """Apply one change-stream event on ``products``."""
        op = change.get("operationType")
        if op in ("insert", "update", "replace"):
            doc = change.get("fullDocument")
            if doc is not None:
                self._put(doc)
            else:  # deleted again before the lookup: the delete event follows
                return
        elif op == "delete":
            key = change.get("documentKey", {}).get("_id")
            product_id = self._key_of.pop(key, None)
            if product_id is not None:
                self._drop(product_id)
        elif op in ("drop", "dropDatabase", "rename", "invalidate"):
            self._by_id, self._key_of, self._sorted, self._priced = {}, {}, [], None
        self.changes_applied += 1

    async def start(self) -> None:
        """Load the catalog and follow its changes (a change stream, else polling)."""
        await super().start()
        log.info("catalog: %d products in memory, kept current by %s", len(self), self.mode)

    async def _open(self) -> Any:
        # A short await keeps start-up quick; an idle stream then costs a getMore per 0.25 s.
        return await open_change_stream(
            self._store.products, full_document="updateLookup", max_await_time_ms=250
        )

    async def poll_once(self) -> None:
        """What changed since the newest ``updated_at`` seen; a delete shows as a lower count."""
        coll = self._store.products
        query = {"updated_at": {"$gt": self._last_update}} if self._last_update else {}
        async for doc in coll.find(query):
            self._put(doc)
            self.changes_applied += 1
        if await coll.count_documents({}) != len(self._by_id):  # a delete: start over
            await self.reload()
