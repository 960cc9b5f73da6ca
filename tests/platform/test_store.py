"""The store against the wire server, through both async drivers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from shopfront.platform.config import Settings
from shopfront.platform.store import (
    INDEXES,
    DatabaseUnavailable,
    DuplicateKeyError,
    Store,
    open_store,
)
from shopfront.testing import test_settings


@pytest.fixture(params=["motor", "pymongo"])
async def driver_store(request: pytest.FixtureRequest, mongo_uri: str) -> AsyncIterator[Store]:
    settings = test_settings(mongo_uri, mongo_driver=request.param)
    store = await open_store(settings, mongo_uri)
    try:
        yield store
    finally:
        await store.drop_database()
        await store.close()


async def test_indexes_created_and_idempotent(driver_store: Store) -> None:
    await driver_store.ensure_indexes()  # a second time is a no-op
    for collection, models in INDEXES.items():
        info = await driver_store.collection(collection).index_information()
        for model in models:
            assert model.document["name"] in info


async def test_unique_product_id(driver_store: Store) -> None:
    await driver_store.products.insert_one({"id": "p1"})
    with pytest.raises(DuplicateKeyError):
        await driver_store.products.insert_one({"id": "p1"})


async def test_transaction_commits_both_or_neither(driver_store: Store) -> None:
    coll = driver_store.collection("tx")
    await coll.insert_one({"_id": "seed"})

    async def both(session: object) -> None:
        await coll.insert_one({"_id": "a"}, session=session)
        await coll.insert_one({"_id": "b"}, session=session)

    await driver_store.in_transaction(both)

    async def fails(session: object) -> None:
        await coll.insert_one({"_id": "c"}, session=session)
        await coll.insert_one({"_id": "seed"}, session=session)  # duplicate: aborts all

    with pytest.raises(DuplicateKeyError):
        await driver_store.in_transaction(fails)
    ids = sorted(d["_id"] for d in await coll.find({}).to_list(None))
    assert ids == ["a", "b", "seed"]


async def test_gridfs_round_trip(driver_store: Store) -> None:
    fs = driver_store.gridfs("models")
    payload = bytes(range(256)) * 4000
    file_id = await fs.upload_from_stream("artifact.bin", payload)
    stream = await fs.open_download_stream(file_id)
    assert await stream.read() == payload


@pytest.mark.parametrize("driver", ["motor", "pymongo"])
async def test_dead_database_fails_fast_with_clear_error(driver: str) -> None:
    settings = Settings.from_env(
        {},
        mongodb_uri="mongodb://127.0.0.1:1/?directConnection=true",
        mongo_driver=driver,
        mongo_server_selection_timeout_ms=300,
    )
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match="unreachable"):
        await open_store(settings, settings.mongodb_uri)
    assert time.monotonic() - started < 5


async def test_concurrent_increments_are_exact(driver_store: Store) -> None:
    coll = driver_store.collection("counters")
    await coll.insert_one({"_id": "c", "n": 0})
    await asyncio.gather(*(coll.update_one({"_id": "c"}, {"$inc": {"n": 1}}) for _ in range(100)))
    assert (await coll.find_one({"_id": "c"}))["n"] == 100


async def test_ttl_follows_the_retention_setting(mongo_uri: str) -> None:
    first = test_settings(mongo_uri, event_retention_days=30)
    store = await open_store(first, mongo_uri)
    try:
        info = await store.collection("events").index_information()
        assert info["timestamp_ttl"]["expireAfterSeconds"] == 30 * 86_400
        # A restart with another retention changes the existing index in place.
        again = test_settings(
            mongo_uri, mongodb_database=first.mongodb_database, event_retention_days=7
        )
        other = await open_store(again, mongo_uri)
        await other.close()
        info = await store.collection("events").index_information()
        assert info["timestamp_ttl"]["expireAfterSeconds"] == 7 * 86_400
        batches = await store.collection("ingest_batches").index_information()
        assert batches["at_ttl"]["expireAfterSeconds"] == 8 * 86_400
    finally:
        await store.drop_database()
        await store.close()


async def test_batch_jobs_read_where_the_setting_says(driver_store: Store) -> None:
    """Training and reports scan through `batch_collection`: a secondary by default (the
    single-node embedded set answers from its primary), the primary when configured."""
    from pymongo import ReadPreference

    events = driver_store.batch_collection("events")
    assert events.read_preference == ReadPreference.SECONDARY_PREFERRED
    assert driver_store.collection("events").read_preference == ReadPreference.PRIMARY
    await driver_store.collection("events").insert_one({"event_id": "e1"})
    assert await events.count_documents({}) == 1
    primary = replace(driver_store.settings, batch_read_preference="primary")
    driver_store.settings = primary
    assert driver_store.batch_collection("events").read_preference == ReadPreference.PRIMARY


def test_user_data_collections_are_indexed_by_their_user_field() -> None:
    from shopfront.platform.store import USER_DATA

    for collection, field_name in USER_DATA.items():
        keys = ["_id"] + [next(iter(m.document["key"])) for m in INDEXES[collection]]
        assert field_name in keys, f"{collection}.{field_name} needs an index for erasure"
