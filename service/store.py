"""The MongoDB store: the only module that imports a MongoDB driver.

Two async drivers sit behind one setting (`SHOPFRONT_MONGO_DRIVER`): motor (the default) and
PyMongo's own `AsyncMongoClient`, which replaces motor (deprecated 2025-05-14). Both speak the
same collection API, so the rest of the service only sees `Store` and the names re-exported
here. Every client carries a server-selection timeout and a per-operation deadline (`timeoutMS`),
so a dead database gives a clear error in seconds instead of a 30-second hang.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar

import pymongo
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
)

from service.config import Settings

__all__ = [
    "ASCENDING",
    "DESCENDING",
    "BulkWriteError",
    "ConnectionFailure",
    "DatabaseUnavailable",
    "DuplicateKeyError",
    "ExecutionTimeout",
    "IndexModel",
    "OperationFailure",
    "PyMongoError",
    "ReturnDocument",
    "Store",
    "UpdateOne",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
Collection = Any  # motor's and PyMongo's async collections share this API; neither is typed alike
Driver = Literal["motor", "pymongo"]


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached or did not answer within its deadline."""


# One place declares every collection's indexes; `Store.ensure_indexes` applies them at start-up.
# Unique indexes carry correctness (ids, hashes); creating them again is a no-op.
INDEXES: dict[str, list[IndexModel]] = {
    "products": [
        IndexModel([("id", ASCENDING)], name="id_1", unique=True),
        IndexModel([("category_path", ASCENDING), ("id", ASCENDING)], name="category_id"),
        IndexModel([("brand", ASCENDING), ("id", ASCENDING)], name="brand_id"),
        IndexModel([("price.amount", ASCENDING)], name="price_amount"),
        IndexModel([("updated_at", DESCENDING)], name="updated_at_-1"),
    ],
    "api_keys": [
        IndexModel([("key_hash", ASCENDING)], name="key_hash_1", unique=True),
        IndexModel([("name", ASCENDING)], name="name_1"),
    ],
    "models": [
        IndexModel([("version", ASCENDING)], name="version_1", unique=True),
        IndexModel([("status", ASCENDING), ("activated_at", DESCENDING)], name="status_activated"),
        IndexModel([("trained_at", DESCENDING)], name="trained_at_-1"),
    ],
}


def _new_client(settings: Settings, uri: str) -> Any:
    options: dict[str, Any] = {
        "serverSelectionTimeoutMS": settings.mongo_server_selection_timeout_ms,
        "timeoutMS": settings.mongo_operation_timeout_ms,
        "connectTimeoutMS": settings.mongo_server_selection_timeout_ms,
        "tz_aware": True,
        "appname": "shopfront",
    }
    if settings.mongo_driver == "pymongo":
        from pymongo import AsyncMongoClient

        return AsyncMongoClient(uri, **options)
    from motor.motor_asyncio import AsyncIOMotorClient

    return AsyncIOMotorClient(uri, **options)


class Store:
    """Owns the client and the database handle; hands out collections by name."""

    def __init__(self, settings: Settings, uri: str, database: str | None = None) -> None:
        self.settings = settings
        self.uri = uri
        self.driver: Driver = settings.mongo_driver
        self.client = _new_client(settings, uri)
        self.db = self.client[database or settings.mongodb_database]

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Check the server answers and create indexes; raise `DatabaseUnavailable` if not."""
        await self.ping()
        await self.ensure_indexes()

    async def close(self) -> None:
        result = self.client.close()
        if isinstance(result, Awaitable):  # PyMongo's async client closes asynchronously
            await result

    async def ping(self, timeout_s: float | None = None) -> None:
        """Raise `DatabaseUnavailable` unless the server answers within ``timeout_s`` (default:
        the server-selection timeout, which `timeoutMS` would otherwise override)."""
        limit = timeout_s or self.settings.mongo_server_selection_timeout_ms / 1000
        try:
            with pymongo.timeout(limit):
                await self.client.admin.command("ping")
        except PyMongoError as exc:
            raise DatabaseUnavailable(
                f"MongoDB at {redact(self.uri)} is unreachable: {exc}"
            ) from exc

    async def ensure_indexes(self) -> None:
        for name, models in INDEXES.items():
            try:
                await self.db[name].create_indexes(models)
            except PyMongoError as exc:
                raise DatabaseUnavailable(f"could not create indexes on {name}: {exc}") from exc

    # -- collections -----------------------------------------------------------------------

    def collection(self, name: str) -> Collection:
        return self.db[name]

    @property
    def products(self) -> Collection:
        return self.db["products"]

    @property
    def api_keys(self) -> Collection:
        return self.db["api_keys"]

    async def collection_names(self) -> list[str]:
        names: list[str] = await self.db.list_collection_names()
        return names

    async def drop_database(self) -> None:
        await self.client.drop_database(self.db.name)

    # -- transactions ----------------------------------------------------------------------

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Any]:
        if self.driver == "pymongo":
            async with self.client.start_session() as s:
                yield s
        else:
            async with await self.client.start_session() as s:
                yield s

    async def in_transaction(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``work(session)`` in a multi-document transaction, retried on transient errors."""
        async with self.session() as s:
            result: T = await s.with_transaction(work)
            return result

    # -- files (model artifacts) -----------------------------------------------------------

    def gridfs(self, bucket: str = "fs") -> Any:
        if self.driver == "pymongo":
            from gridfs import AsyncGridFSBucket

            return AsyncGridFSBucket(self.db, bucket_name=bucket)
        from motor.motor_asyncio import AsyncIOMotorGridFSBucket

        return AsyncIOMotorGridFSBucket(self.db, bucket_name=bucket)


def redact(uri: str) -> str:
    """The URI without its password, for messages and logs."""
    if "@" not in uri:
        return uri
    scheme, _, rest = uri.partition("://")
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


async def open_store(settings: Settings, uri: str, database: str | None = None) -> Store:
    store = Store(settings, uri, database)
    try:
        await store.open()
    except BaseException:
        await store.close()
        raise
    return store


def wait_until_reachable(uri: str, timeout_s: float, alive: Callable[[], bool]) -> None:
    """Block until ``uri`` answers ping, ``alive()`` turns false, or ``timeout_s`` passes.

    Synchronous on purpose: it runs before any event loop exists (CLI start-up, test session).
    """
    import time

    from pymongo import MongoClient

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise DatabaseUnavailable("the embedded database exited during start-up")
        client: MongoClient[dict[str, Any]] = MongoClient(
            uri, serverSelectionTimeoutMS=250, connectTimeoutMS=250
        )
        try:
            client.admin.command("ping")
            return
        except PyMongoError as exc:
            last = exc
        finally:
            client.close()
        time.sleep(0.1)
    raise DatabaseUnavailable(f"no answer to ping from {uri} after {timeout_s:.0f}s: {last}")
