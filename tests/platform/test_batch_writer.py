"""The background writer: queued writes land in batches, a full queue drops (and says so)
instead of blocking, and shutdown drains what is queued."""

from __future__ import annotations

import logging

import pytest
from shopfront.platform.batch_writer import BatchWriter
from shopfront.platform.metrics import Metrics
from shopfront.platform.store import InsertOne, Store, UpdateOne

from tests.waiting import eventually


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value if value is not None else 0.0


async def test_queued_writes_land_in_one_batch_per_collection(store: Store) -> None:
    metrics = Metrics()
    writer = BatchWriter(store, metrics=metrics, interval_s=60)
    assert writer.submit("served", [InsertOne({"_id": i}) for i in range(5)])
    assert writer.submit("seen", [UpdateOne({"_id": "a"}, {"$inc": {"n": 1}}, upsert=True)])
    assert await store.collection("served").count_documents({}) == 0  # nothing awaited yet
    assert sample(metrics, "shopfront_write_queue_depth") == 6
    await writer.flush()
    assert await store.collection("served").count_documents({}) == 5
    assert (await store.collection("seen").find_one({"_id": "a"})) == {"_id": "a", "n": 1}
    assert sample(metrics, "shopfront_write_batches_total", collection="served", outcome="ok") == 1
    assert sample(metrics, "shopfront_write_queue_depth") == 0

    # The same insert again (a retried batch) is not an error and changes nothing.
    writer.submit("served", [InsertOne({"_id": 0}), InsertOne({"_id": 9})])
    await writer.aclose()
    assert await store.collection("served").count_documents({}) == 6
    assert sample(metrics, "shopfront_write_batches_total", collection="served", outcome="ok") == 2


async def test_a_full_queue_drops_and_says_so(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    writer = BatchWriter(store, metrics=metrics, max_pending=3, interval_s=60)
    assert writer.submit("served", [InsertOne({"_id": i}) for i in range(3)])
    with caplog.at_level(logging.WARNING, logger="shopfront.platform.batch_writer"):
        assert not writer.submit("served", [InsertOne({"_id": 3}), InsertOne({"_id": 4})])
    assert writer.dropped == 2
    assert sample(metrics, "shopfront_write_queue_dropped_total", collection="served") == 2
    assert any("queue full" in r.getMessage() for r in caplog.records)
    assert b"shopfront_write_queue_dropped_total" in metrics.exposition()[0]

    # Shutdown drains what was queued, and takes nothing after.
    await writer.aclose()
    assert await store.collection("served").count_documents({}) == 3
    assert not writer.submit("served", [InsertOne({"_id": 5})])
    assert writer.dropped == 3


async def test_writes_land_on_their_own_without_a_shutdown(store: Store) -> None:
    """What a crash can lose is bounded: queued writes reach the database by themselves
    (after ``interval_s``, or at once when a batch is full), no flush or shutdown needed."""
    writer = BatchWriter(store, interval_s=0.05, batch_size=100)
    writer.submit("served", [InsertOne({"_id": i}) for i in range(5)])

    async def landed(n: int) -> bool:
        return await store.collection("served").count_documents({}) == n

    await eventually(lambda: landed(5), "the timer wrote the queued batch")
    writer.submit("served", [InsertOne({"_id": 100 + i}) for i in range(100)])  # a full batch
    await eventually(lambda: landed(105), "a full batch was written at once")
    assert writer.pending == 0
    await writer.aclose()


def test_bounds_must_make_sense(store: Store) -> None:
    with pytest.raises(ValueError, match="positive"):
        BatchWriter(store, max_pending=0)
