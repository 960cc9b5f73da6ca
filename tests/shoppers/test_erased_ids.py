"""The in-memory set of erased ids (shopfront.shoppers.erased): another instance learns an
erasure on its next refresh, and the second pass removes a write that raced the erasure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shopfront.platform.store import Store
from shopfront.shoppers import events, privacy
from shopfront.shoppers.erased import ErasedIds

from tests.shoppers.event_helpers import ev, seed_products


async def test_other_instances_learn_erasures_on_refresh(store: Store) -> None:
    await seed_products(store)
    await events.ingest_events(store, store.settings, [ev("a", user_id="u1", session_id="s1")])
    other = ErasedIds(store, refresh_seconds=60)
    await other.start()
    try:
        assert not other.any_erased("u1", "s1")
        report = await privacy.erase_user(store, "u1")
        assert report.sessions == ("s1",)
        assert not other.any_erased("u1")  # not refreshed yet: no I/O on the check
        assert await other.refresh() == 2  # the shopper and their session
        assert other.any_erased("u1") and other.any_erased(None, "s1")
        assert not other.any_erased("u2", None, "")
        # Incremental: an erasure recorded a little in the past (a slower clock) is still seen.
        await privacy.erase_user(store, "u3", now=datetime.now(UTC) - timedelta(minutes=1))
        assert await other.refresh() == 1 and other.any_erased("u3")
        assert await other.refresh() == 0
    finally:
        await other.close()


async def test_second_pass_removes_writes_that_raced_the_erasure(store: Store) -> None:
    erased = ErasedIds(store, refresh_seconds=60)
    await erased.start()
    await store.collection("recommendations").insert_one({"user_id": "u1", "session_id": "s1"})
    report = await privacy.erase_user(store, "u1")
    erased.add([report.user_id, *report.sessions])
    erased.sweep_later(report.user_id, report.sessions)
    # An instance that had not refreshed yet writes for the session after the erasure.
    await store.collection("exposures").insert_one({"user_id": None, "session_id": "s1"})
    await store.collection("assignments").insert_one({"user_id": "u1", "shopper": "u1"})
    await erased.close()  # pending second passes run at shutdown instead of being dropped
    for name in ("exposures", "assignments", "recommendations"):
        assert await store.collection(name).count_documents({}) == 0, name
