"""The MongoDB store: the only module that imports a MongoDB driver.

Two async drivers sit behind one setting (`SHOPFRONT_MONGO_DRIVER`): motor (the default) and
PyMongo's own `AsyncMongoClient`, which replaces motor (deprecated 2025-05-14). Both speak the
same collection API, so the rest of the service only sees `Store` and the names re-exported
here. Every client carries a server-selection timeout and a per-operation deadline (`timeoutMS`),
so a dead database gives a clear error in seconds instead of a 30-second hang.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any, Literal, TypeVar

import pymongo
from pymongo import (
    ASCENDING,
    DESCENDING,
    IndexModel,
    InsertOne,
    ReadPreference,
    ReturnDocument,
    UpdateOne,
    monitoring,
)
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
)
from shopfront.platform import personal_data
from shopfront.platform.config import Settings

__all__ = [
    "ASCENDING",
    "DESCENDING",
    "BulkWriteError",
    "CommandTimer",
    "ConnectionFailure",
    "DatabaseUnavailable",
    "DuplicateKeyError",
    "ExecutionTimeout",
    "IndexModel",
    "InsertOne",
    "OperationFailure",
    "PyMongoError",
    "ReturnDocument",
    "Store",
    "UpdateOne",
    "is_unavailable",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
Collection = Any  # motor's and PyMongo's async collections share this API; neither is typed alike
Driver = Literal["motor", "pymongo"]
_DAY = 86_400


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached or did not answer within its deadline."""


# Server error codes that mean "not now" rather than "never": the node is unreachable, shutting
# down, stepping down or interrupted (the codes MongoDB's drivers retry on).
TRANSIENT_ERROR_CODES = frozenset({6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is unreachable, slow or restarting (retry later),
    as opposed to a bad query or a bug: connection failures, server-selection and network
    timeouts, operations past their deadline, a primary stepping down, transient server
    errors (``TRANSIENT_ERROR_CODES`` or a retryable/transient error label)."""
    if isinstance(exc, DatabaseUnavailable | ConnectionFailure | ExecutionTimeout):
        return True
    if not isinstance(exc, PyMongoError):
        return False
    if exc.timeout:
        return True
    if isinstance(exc, OperationFailure) and exc.code in TRANSIENT_ERROR_CODES:
        return True
    return exc.has_error_label("RetryableWriteError") or exc.has_error_label(
        "TransientTransactionError"
    )


# One place declares every collection's indexes; `Store.ensure_indexes` applies them at start-up.
# Unique indexes carry correctness (ids, hashes); creating them again is a no-op.
_READ_PREFERENCES: dict[str, Any] = {
    "primary": ReadPreference.PRIMARY,
    "primaryPreferred": ReadPreference.PRIMARY_PREFERRED,
    "secondary": ReadPreference.SECONDARY,
    "secondaryPreferred": ReadPreference.SECONDARY_PREFERRED,
    "nearest": ReadPreference.NEAREST,
}

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
    # Served recommendation slots (shopfront.storefront.composer), kept for attribution until
    # expire_at.
    "recommendations": [
        IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_created"),
        IndexModel([("session_id", ASCENDING), ("created_at", DESCENDING)], name="session_created"),
        IndexModel([("request_id", ASCENDING)], name="request_id_1"),
    ],
    # Behaviour events. The unique event_id makes a retried batch count once; the TTL index
    # (lifetime from SHOPFRONT_EVENT_RETENTION_DAYS) comes from the personal-data registry.
    "events": [
        IndexModel([("event_id", ASCENDING)], name="event_id_1", unique=True),
        IndexModel([("user_id", ASCENDING), ("timestamp", DESCENDING)], name="user_timestamp"),
        IndexModel([("session_id", ASCENDING)], name="session_id_1"),
        IndexModel([("product_id", ASCENDING), ("timestamp", DESCENDING)], name="product_time"),
        IndexModel([("batch", ASCENDING)], name="batch_1", sparse=True),
    ],
    # Ingestion batches whose profile updates completed (see shopfront.shoppers.events: recovery).
    "ingest_batches": [
        IndexModel([("at", ASCENDING)], name="at_ttl", expireAfterSeconds=_DAY),
        IndexModel([("done", ASCENDING), ("at", ASCENDING)], name="done_at"),
    ],
    # One per shopper; _id is the shopper id too (see shopfront.shoppers.profiles).
    "profiles": [
        IndexModel([("user_id", ASCENDING)], name="user_id_1", unique=True),
    ],
    # Anonymous popularity: counts per product, UTC day and event type (no shopper ids);
    # _id is "<day>|<product id>" (see shopfront.shoppers.events.record_product_stats).
    "product_stats": [
        IndexModel(
            [("product_id", ASCENDING), ("day", ASCENDING)], name="product_day", unique=True
        ),
        IndexModel([("day", ASCENDING), ("product_id", ASCENDING)], name="day_product"),
    ],
    # Anonymous session -> shopper links made by `identify` (_id is the session id).
    "session_links": [
        IndexModel([("user_id", ASCENDING)], name="user_id_1"),
    ],
    # Erased shoppers, by a hash of their id (_id), so late events for them are refused.
    # erased_at: each instance's in-memory set reads the new ones (shopfront.shoppers.erased).
    "tombstones": [IndexModel([("erased_at", ASCENDING)], name="erased_at_1")],
    # Consent answers, _id = shopper id (see shopfront.shoppers.privacy).
    "consents": [],
    "models": [
        IndexModel([("version", ASCENDING)], name="version_1", unique=True),
        IndexModel([("status", ASCENDING), ("activated_at", DESCENDING)], name="status_activated"),
        IndexModel([("trained_at", DESCENDING)], name="trained_at_-1"),
    ],
    # Promotions and coupons (shopfront.offers.promotions, shopfront.offers.coupon_service).
    "promotions": [
        IndexModel([("id", ASCENDING)], name="id_1", unique=True),
        IndexModel([("active", ASCENDING), ("id", ASCENDING)], name="active_id"),
    ],
    "coupon_campaigns": [
        IndexModel([("active", ASCENDING), ("_id", ASCENDING)], name="active_id"),
    ],
    "coupon_codes": [
        IndexModel([("code", ASCENDING)], name="code_1", unique=True),
        IndexModel([("campaign_id", ASCENDING), ("_id", ASCENDING)], name="campaign_id"),
        # One personal code per (strategy, shopper, period): minting is idempotent.
        IndexModel(
            [("strategy", ASCENDING), ("user_id", ASCENDING), ("period", ASCENDING)],
            name="strategy_user_period",
            unique=True,
            partialFilterExpression={"strategy": {"$exists": True}},
        ),
        IndexModel([("user_id", ASCENDING)], name="user_id_1", sparse=True),
    ],
    "coupon_redemptions": [
        # One live redemption per (campaign, shopper, order); a released one may be redone.
        IndexModel(
            [("campaign_id", ASCENDING), ("user_id", ASCENDING), ("order_id", ASCENDING)],
            name="campaign_user_order",
            unique=True,
            partialFilterExpression={"status": "redeemed"},
        ),
        IndexModel([("order_id", ASCENDING)], name="order_id_1"),
        IndexModel([("user_id", ASCENDING)], name="user_id_1"),
    ],
    "coupon_usage": [IndexModel([("user_id", ASCENDING)], name="user_id_1")],
    "coupon_idempotency": [
        IndexModel([("user_id", ASCENDING)], name="user_id_1", sparse=True),
    ],
}

# TTL indexes whose lifetime is a setting: (collection, index name) -> seconds. `ensure_indexes`
# applies the setting and changes an existing index's lifetime in place (collMod).
TTL_SECONDS: dict[tuple[str, str], Callable[[Settings], int]] = {
    # Completion markers outlive the events they describe (see shopfront.shoppers.events).
    ("ingest_batches", "at_ttl"): lambda s: (s.event_retention_days + 1) * _DAY,
}

# Every collection that holds data about one shopper -> the field holding the shopper's id:
# derived from the one registry, `shopfront.platform.personal_data.PERSONAL_DATA`, which also
# gives each its retention (TTL index, created by `Store.ensure_indexes`).
USER_DATA = personal_data.USER_DATA


# Experiments, exposures and attribution (shopfront.experiments.definitions,
# shopfront.experiments.attribution,
# shopfront.experiments.reports). Reports aggregate on these fields; see those modules for the
# documents.
INDEXES.update(
    {
        "experiments": [
            IndexModel([("name", ASCENDING)], name="name_1", unique=True),
            IndexModel([("status", ASCENDING)], name="status_1"),
        ],
        # One document per (experiment, shopper key): the first assignment, kept for good.
        "assignments": [
            IndexModel(
                [("experiment_id", ASCENDING), ("shopper", ASCENDING)],
                name="experiment_shopper",
                unique=True,
            ),
            IndexModel([("shopper", ASCENDING)], name="shopper_1"),
            IndexModel([("experiment_id", ASCENDING), ("variant", ASCENDING)], name="exp_variant"),
            IndexModel([("user_id", ASCENDING)], name="user_id_1"),
            IndexModel([("session_id", ASCENDING)], name="session_id_1"),
            IndexModel(
                [("override", ASCENDING), ("recorded_at", ASCENDING)],
                name="override_recorded",
                partialFilterExpression={"override": True},
            ),
        ],
        # Sampled impressions of served slots and offers.
        "exposures": [
            IndexModel([("experiment_id", ASCENDING), ("variant", ASCENDING)], name="exp_variant"),
            IndexModel([("user_id", ASCENDING)], name="user_id_1"),
            IndexModel([("session_id", ASCENDING)], name="session_id_1"),
        ],
        # Click, add-to-cart and purchase events credited to a slot, strategy and variant.
        "attributions": [
            IndexModel([("experiment_id", ASCENDING), ("type", ASCENDING)], name="exp_type"),
            IndexModel(
                [("user_id", ASCENDING), ("product_id", ASCENDING), ("timestamp", DESCENDING)],
                name="user_product_time",
            ),
            IndexModel(
                [("session_id", ASCENDING), ("product_id", ASCENDING), ("timestamp", DESCENDING)],
                name="session_product_time",
            ),
        ],
    }
)
# Indexes the reports need on collections other modules own (appended, never replaced).
INDEXES.setdefault("events", []).extend(
    [
        IndexModel([("type", ASCENDING), ("timestamp", ASCENDING)], name="type_timestamp"),
        IndexModel([("order_id", ASCENDING)], name="order_id_1"),
    ]
)
# Retention TTL indexes (personal_data.retention_indexes) replace these plain ones on the same
# field: `Store.ensure_indexes` drops them where an older version created them.
REPLACED_BY_TTL: dict[str, tuple[str, ...]] = {
    "exposures": ("at_1",),
    "attributions": ("timestamp_1",),
    "coupon_redemptions": ("redeemed_at_1",),
}


class CommandTimer(monitoring.CommandListener):
    """Reports every command's name, round-trip time and success to ``observe``.

    Registered per client (``Store(..., listeners=[...])``), so each app measures only its own
    database calls. Called by the driver on whatever thread ran the command; ``observe`` must
    be thread-safe and quick (a Prometheus histogram is both).
    """

    def __init__(self, observe: Callable[[str, float, bool], None]) -> None:
        self._observe = observe

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._observe(event.command_name, event.duration_micros / 1e6, True)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._observe(event.command_name, event.duration_micros / 1e6, False)


def _new_client(settings: Settings, uri: str, listeners: Sequence[Any] = ()) -> Any:
    options: dict[str, Any] = {
        "serverSelectionTimeoutMS": settings.mongo_server_selection_timeout_ms,
        "timeoutMS": settings.mongo_operation_timeout_ms,
        "connectTimeoutMS": settings.mongo_server_selection_timeout_ms,
        "tz_aware": True,
        "appname": "shopfront",
    }
    if listeners:
        options["event_listeners"] = list(listeners)
    if settings.mongo_driver == "pymongo":
        from pymongo import AsyncMongoClient

        return AsyncMongoClient(uri, **options)
    from motor.motor_asyncio import AsyncIOMotorClient

    return AsyncIOMotorClient(uri, **options)


class Store:
    """Owns the client and the database handle; hands out collections by name."""

    def __init__(
        self,
        settings: Settings,
        uri: str,
        database: str | None = None,
        *,
        listeners: Sequence[Any] = (),
    ) -> None:
        self.settings = settings
        self.uri = uri
        self.driver: Driver = settings.mongo_driver
        self.client = _new_client(settings, uri, listeners)
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

    def declared_indexes(self) -> dict[str, list[IndexModel]]:
        """Every collection's indexes: `INDEXES` plus the retention TTL index of each
        personal-data collection, with lifetimes from the settings."""
        out = {
            name: [self._with_settings(name, m) for m in models] for name, models in INDEXES.items()
        }
        for r in personal_data.retention_indexes(self.settings):
            options: dict[str, Any] = {"name": r.name, "expireAfterSeconds": r.expire_after_seconds}
            if r.partial is not None:
                options["partialFilterExpression"] = dict(r.partial)
            out.setdefault(r.collection, []).append(IndexModel([(r.key, ASCENDING)], **options))
        return out

    async def ensure_indexes(self) -> None:
        for name, models in self.declared_indexes().items():
            if not models:
                continue
            try:
                await self._drop_replaced(name)
                await self._sync_ttl(name, models)
                await self.db[name].create_indexes(models)
            except PyMongoError as exc:
                raise DatabaseUnavailable(f"could not create indexes on {name}: {exc}") from exc

    async def _drop_replaced(self, collection: str) -> None:
        """Drop plain indexes an older version created where a TTL index now stands: MongoDB
        refuses a second index on the same key with other options."""
        replaced = REPLACED_BY_TTL.get(collection)
        if not replaced:
            return
        existing = await self.db[collection].index_information()
        for index_name in replaced:
            if index_name in existing:
                await self.db[collection].drop_index(index_name)
                log.info("index %s.%s replaced by a retention TTL index", collection, index_name)

    def _with_settings(self, collection: str, model: IndexModel) -> IndexModel:
        ttl = TTL_SECONDS.get((collection, model.document["name"]))
        if ttl is None:
            return model
        options = dict(model.document)
        keys = list(options.pop("key").items())
        options["expireAfterSeconds"] = ttl(self.settings)
        return IndexModel(keys, **options)

    async def _sync_ttl(self, collection: str, models: list[IndexModel]) -> None:
        """Give existing TTL indexes the lifetime the settings ask for: creating an index
        again with another ``expireAfterSeconds`` is an error, `collMod` changes it in place."""
        wanted = {
            m.document["name"]: m.document["expireAfterSeconds"]
            for m in models
            if "expireAfterSeconds" in m.document
        }
        if not wanted:
            return
        existing = await self.db[collection].index_information()
        for index_name, seconds in wanted.items():
            current = existing.get(index_name, {}).get("expireAfterSeconds")
            if current is not None and current != seconds:
                await self.db.command(
                    "collMod", collection, index={"name": index_name, "expireAfterSeconds": seconds}
                )
                log.info(
                    "TTL of %s.%s changed from %ss to %ss", collection, index_name, current, seconds
                )

    # -- collections -----------------------------------------------------------------------

    def collection(self, name: str) -> Collection:
        return self.db[name]

    def batch_collection(self, name: str) -> Collection:
        """``name`` for a batch job's scans: read from ``SHOPFRONT_BATCH_READ_PREFERENCE``
        (a secondary by default), so training and reports leave the primary to shoppers."""
        mode = _READ_PREFERENCES[self.settings.batch_read_preference]
        return self.db[name].with_options(read_preference=mode)

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
        # Dropping a database with many collections and indexes is slow on a loaded server:
        # it gets its own deadline, not a request's operation timeout.
        with deadline(DROP_DEADLINE_S):
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


DROP_DEADLINE_S = 60.0


def deadline(seconds: float) -> AbstractContextManager[None]:
    """Operations started inside get ``seconds`` in all instead of the client's per-operation
    ``timeoutMS`` (a batch job's own deadline, not a request's)."""
    return pymongo.timeout(seconds)


def redact(uri: str) -> str:
    """The URI without its password, for messages and logs."""
    if "@" not in uri:
        return uri
    scheme, _, rest = uri.partition("://")
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


async def open_store(
    settings: Settings,
    uri: str,
    database: str | None = None,
    *,
    listeners: Sequence[Any] = (),
) -> Store:
    """An opened `Store`; ``listeners`` are driver event listeners (e.g. `CommandTimer`)."""
    store = Store(settings, uri, database, listeners=listeners)
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


async def aggregate(
    collection: Collection, pipeline: list[dict[str, Any]], **options: Any
) -> list[dict[str, Any]]:
    """Run an aggregation pipeline and return its documents, with either driver: PyMongo's
    async ``aggregate`` is a coroutine that returns a cursor, motor's returns the cursor."""
    import inspect

    cursor = collection.aggregate(pipeline, **options)
    if inspect.isawaitable(cursor):
        cursor = await cursor
    docs: list[dict[str, Any]] = await cursor.to_list(None)
    return docs


async def open_change_stream(
    collection: Collection, pipeline: list[dict[str, Any]] | None = None, **options: Any
) -> Any:
    """A change stream on ``collection``, with either driver (PyMongo's async ``watch`` is a
    coroutine, motor's returns the stream). Read it with ``try_next()``, ``close()`` it when
    done. The first ``try_next()`` raises `OperationFailure` where the server has no change
    streams (a standalone mongod)."""
    import inspect

    stream = collection.watch(pipeline, **options)
    if inspect.isawaitable(stream):
        stream = await stream
    return stream
