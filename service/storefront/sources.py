"""Where a request reads from: the shopper's profile and the catalog, once per request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from shopfront.catalog.products import Product, get_products
from shopfront.catalog.snapshot import CatalogSnapshot
from shopfront.platform.store import Store
from shopfront.shoppers.profile_view import Profile
from strawberry.dataloader import DataLoader

MAX_LOOKUP = 2000  # products one catalog lookup may ask for


# -- the profile -------------------------------------------------------------------------


class ProfileSource(Protocol):
    """Loads a shopper's profile as of ``now``; None for a shopper we know nothing about."""

    async def load(self, user_id: str, now: datetime) -> Profile | None: ...


class FunctionProfileSource:
    """Adapts a ``load_profile(store, user_id, now)`` function to `ProfileSource`."""

    def __init__(
        self,
        store: Store,
        load_profile: Callable[[Store, str, datetime], Awaitable[Profile | None]],
    ) -> None:
        self._store = store
        self._load = load_profile

    async def load(self, user_id: str, now: datetime) -> Profile | None:
        return await self._load(self._store, user_id, now)


# -- the catalog, per request -------------------------------------------------------------


def product_loader(
    store: Store, snapshot: CatalogSnapshot | None = None
) -> DataLoader[str, Product | None]:
    """A per-request DataLoader over the in-memory catalog (``snapshot``; only ids it does not
    know yet are read through), or over `catalog.get_products` without one: one round trip
    per batch."""

    async def batch(ids: list[str]) -> list[Product | None]:
        if snapshot is not None:
            found = snapshot.get_many(ids)
            if len(found) < len(ids):
                found = await snapshot.lookup(ids)
        else:
            found = await get_products(store, ids)
        return [found.get(i) for i in ids]

    return DataLoader(load_fn=batch, max_batch_size=MAX_LOOKUP)


class RequestCatalog:
    """`CatalogReader` over the request's DataLoader, usable from any event loop.

    Strategies run on their plugin's loop (see `shopfront.extend.isolation`); a lookup from
    there is handed to the request's loop, so every lookup of the request shares one cache and
    one batch, and the database client is only used on the loop it belongs to.
    """

    def __init__(
        self, loader: DataLoader[str, Product | None], loop: asyncio.AbstractEventLoop
    ) -> None:
        self._loader = loader
        self._loop = loop

    async def _load(self, ids: list[str]) -> list[Product | None]:
        # The loader's futures are shared by everything in the request that asks for the same
        # product: a strategy cancelled at its deadline stops waiting, but must not cancel
        # the read the rest of the request is waiting on too.
        return list(await asyncio.shield(self._loader.load_many(ids)))

    async def get_many(self, ids: Sequence[str]) -> Mapping[str, Product]:
        """Products by id (inactive ones included; unknown ids left out). A strategy may ask
        for at most `MAX_LOOKUP` at a time: more means a pass over the catalog."""
        unique = list(dict.fromkeys(str(i) for i in ids))
        if len(unique) > MAX_LOOKUP:
            raise ValueError(f"at most {MAX_LOOKUP} products per lookup, got {len(unique)}")
        return await self.load_all(unique)

    async def load_all(self, ids: Sequence[str]) -> Mapping[str, Product]:
        """`get_many` without the bound (the host's own lookups; batched by the loader)."""
        unique = list(dict.fromkeys(str(i) for i in ids))
        if not unique:
            return {}
        if asyncio.get_running_loop() is self._loop:
            found = await self._load(unique)
        else:
            future = asyncio.run_coroutine_threadsafe(self._load(unique), self._loop)
            found = await asyncio.wrap_future(future)
        return {i: p for i, p in zip(unique, found, strict=True) if p is not None}
