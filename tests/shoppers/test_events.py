"""Event ingestion (shopfront.shoppers.events): validation, idempotence, consent, identify,
recovery."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shopfront.platform.config import Settings
from shopfront.platform.store import PyMongoError, Store
from shopfront.shoppers import events, privacy, profiles
from shopfront.shoppers.events import EventStatus, ingest_events
from shopfront.testing import test_settings

from tests.shoppers.event_helpers import at, ev, seed_products

A_MONTH_AGO = 60 * 24 * 30


async def ingest(store: Store, raws: list[dict[str, Any]], **kw: Any) -> list[events.EventResult]:
    return await ingest_events(store, store.settings, raws, **kw)


@pytest.fixture
async def shop(store: Store) -> Store:
    await seed_products(store)
    return store


# Every reason an event is refused, with the field the reason names.
REJECTIONS: list[tuple[str, Callable[[], dict[str, Any]], str]] = [
    ("no event id", lambda: ev("x", event_id=None), "event_id: is required"),
    ("unknown type", lambda: ev("x", "like"), "type: 'like' is not an event type"),
    ("nobody", lambda: ev("x", user_id=None), "user_id: a user_id or a session_id is required"),
    ("e-mail user", lambda: ev("x", user_id="ann@example.com"), "user_id: looks like an e-mail"),
    ("ip user", lambda: ev("x", user_id="192.168.1.20"), "user_id: looks like an IP address"),
    ("ipv6 session", lambda: ev("x", session_id="2001:db8::1"), "session_id: looks like an IP"),
    (
        "e-mail order",
        lambda: ev("x", "purchase", order_id="o:ann@example.com"),
        "order_id: looks like",
    ),
    ("control chars", lambda: ev("x", user_id="u\n1"), "user_id: must not contain control"),
    ("long id", lambda: ev("x", user_id="u" * 201), "user_id: must be at most 200"),
    ("id not a string", lambda: ev("x", user_id=42), "user_id: must be a string"),
    ("no timestamp", lambda: ev("x", timestamp=None), "timestamp: is required"),
    ("timestamp text", lambda: ev("x", timestamp="yesterday"), "timestamp: must be a date-time"),
    ("naive", lambda: ev("x", timestamp=datetime(2026, 1, 1)), "timestamp: must carry a time zone"),
    ("future", lambda: ev("x", timestamp=at(-6)), "timestamp: more than 5 minutes in the future"),
    ("too old", lambda: ev("x", timestamp=at(60 * 24 * 366)), "timestamp: older than the 365-day"),
    ("no product", lambda: ev("x", product_id=None), "product_id: is required for view events"),
    ("unknown product", lambda: ev("x", product_id="nope"), "product_id: unknown product 'nope'"),
    (
        "zero quantity",
        lambda: ev("x", "add_to_cart", quantity=0),
        "quantity: must be a whole number",
    ),
    (
        "huge quantity",
        lambda: ev("x", "purchase", quantity=10**6),
        "quantity: must be a whole number",
    ),
    ("no price", lambda: ev("x", "purchase", price=None), "price: is required for purchase events"),
    ("no order", lambda: ev("x", "purchase", order_id=None), "order_id: is required for purchase"),
    (
        "negative price",
        lambda: ev("x", "purchase", price={"amount": -1, "currency": "EUR"}),
        "price.amount: must not be negative",
    ),
    (
        "float price",
        lambda: ev("x", "purchase", price={"amount": 9.99, "currency": "EUR"}),
        "price.amount: must be whole minor units",
    ),
    (
        "bad currency",
        lambda: ev("x", "purchase", price={"amount": 100, "currency": "EURO"}),
        "price.currency:",
    ),
    ("price not money", lambda: ev("x", "purchase", price=12), "price: must be an amount"),
    ("rating 6", lambda: ev("x", "rating", rating=6), "rating: must be a whole number from 1 to 5"),
    ("rating 0", lambda: ev("x", "rating", rating=0), "rating: must be a whole number from 1 to 5"),
    ("no rating", lambda: ev("x", "rating", rating=None), "rating: is required for rating events"),
    ("rating on a view", lambda: ev("x", rating=5), "rating: not used by view events"),
    ("no review", lambda: ev("x", "review", review=None), "review: is required for review events"),
    ("blank review", lambda: ev("x", "review", review="   "), "review: must not be blank"),
    ("long review", lambda: ev("x", "review", review="a" * 5001), "review: longer than 5000"),
    ("no query", lambda: ev("x", "search", query=None), "query: is required for search events"),
    ("long query", lambda: ev("x", "search", query="q" * 501), "query: longer than 500"),
    (
        "product on search",
        lambda: ev("x", "search", product_id="shoe-1"),
        "product_id: not used by",
    ),
    ("order on a view", lambda: ev("x", order_id="o-9"), "order_id: not used by view events"),
    ("negative position", lambda: ev("x", position=-1), "position: must be a whole number from 1"),
    (
        "position 0 (1-based)",
        lambda: ev("x", position=0),
        "position: must be a whole number from 1",
    ),
    ("bad page type", lambda: ev("x", page_type="blog"), "page_type: 'blog' is not a page type"),
    ("unknown field", lambda: ev("x", colour="red"), "colour: not an event field"),
]


@pytest.mark.parametrize(
    ("make", "reason"), [(m, why) for _, m, why in REJECTIONS], ids=[n for n, _, _ in REJECTIONS]
)
async def test_every_rejection_reason(
    shop: Store, make: Callable[[], dict[str, Any]], reason: str
) -> None:
    results = await ingest(shop, [ev("good"), make(), ev("good-too", "click")])
    assert [r.status for r in results] == [
        EventStatus.ACCEPTED,
        EventStatus.REJECTED,
        EventStatus.ACCEPTED,
    ]
    assert results[1].reason is not None and results[1].reason.startswith(reason), results[1]
    stored = await shop.collection("events").distinct("event_id")
    assert sorted(stored) == ["good", "good-too"]  # the bad one cost nothing else


async def test_erased_shopper_is_refused(shop: Store) -> None:
    await privacy.erase_user(shop, "gone")
    results = await ingest(shop, [ev("late", user_id="gone"), ev("ok")])
    assert results[0].status is EventStatus.REJECTED
    assert results[0].reason == (
        "user_id: this shopper's data was erased; events for them are not stored"
    )
    assert results[1].status is EventStatus.ACCEPTED
    assert await shop.collection("events").count_documents({"user_id": "gone"}) == 0


async def test_any_number_of_events_is_written_in_batches(mongo_uri: str) -> None:
    settings = test_settings(mongo_uri, max_events_per_call=3)
    store_ = await _open(settings)
    try:
        await seed_products(store_)
        raws = [ev(f"e{i}") for i in range(7)] + [ev("e1"), ev("bad", rating=1)]
        results = await ingest_events(store_, settings, raws)
        assert [r.index for r in results] == list(range(9))
        assert [r.status for r in results] == [EventStatus.ACCEPTED] * 7 + [
            EventStatus.DUPLICATE,
            EventStatus.REJECTED,
        ]
        doc = await store_.collection("profiles").find_one({"user_id": "u1"})
        assert doc["counts"] == {"view": 7}
        assert await store_.collection("ingest_batches").count_documents({"done": True}) == 3
    finally:
        await store_.drop_database()
        await store_.close()


async def _open(settings: Settings) -> Store:
    from shopfront.platform.store import open_store

    return await open_store(settings, settings.mongodb_uri)


async def test_duplicates_in_a_batch_and_across_calls_count_once(shop: Store) -> None:
    batch = [ev("a"), ev("b", "add_to_cart"), ev("a")]
    first = await ingest(shop, batch)
    assert [r.status for r in first] == [
        EventStatus.ACCEPTED,
        EventStatus.ACCEPTED,
        EventStatus.DUPLICATE,
    ]
    assert first[2].reason == "event_id: same as event 0 of this batch"
    again = await ingest(shop, batch)
    assert [r.status for r in again] == [EventStatus.DUPLICATE] * 3
    assert again[0].reason == "event_id: already received"
    assert await shop.collection("events").count_documents({}) == 2
    doc = await shop.collection("profiles").find_one({"user_id": "u1"})
    assert doc["counts"] == {"view": 1, "add_to_cart": 1}
    stats = await shop.collection("product_stats").find_one({"product_id": "shoe-1"})
    assert stats["counts"] == {"view": 1, "add_to_cart": 1}


async def test_concurrent_retries_of_one_batch_store_it_once(shop: Store) -> None:
    batch = [ev(f"e{i}", "view" if i % 2 else "add_to_cart") for i in range(20)]
    outcomes = await asyncio.gather(*(ingest(shop, batch) for _ in range(5)))
    accepted = [r.event_id for out in outcomes for r in out if r.status is EventStatus.ACCEPTED]
    assert sorted(accepted) == sorted(e["event_id"] for e in batch)
    doc = await shop.collection("profiles").find_one({"user_id": "u1"})
    assert doc["counts"] == {"view": 10, "add_to_cart": 10}


async def test_free_text_is_redacted(shop: Store) -> None:
    await ingest(
        shop,
        [
            ev("s", "search", query="order for ann.lee@example.org from 10.0.0.7 at 12:30:45"),
            ev("r", "review", review="Mail me: bob@example.com, fe80::1 works"),
        ],
    )
    docs = {d["event_id"]: d for d in await shop.collection("events").find().to_list(None)}
    assert docs["s"]["query"] == "order for [email] from [ip] at 12:30:45"
    assert docs["r"]["review"] == "Mail me: [email], [ip] works"


async def test_stored_event_document(shop: Store) -> None:
    t = at(3)
    raw = ev(
        "p1",
        "purchase",
        session_id="s-1",
        user_id="u1",
        timestamp=t,
        quantity=2,
        price={"amount": 8500, "currency": "eur"},
        recommendation_id="rec-9",
        position=2,
        page_type="CHECKOUT",
    )
    await ingest(shop, [raw])
    doc = await shop.collection("events").find_one({"event_id": "p1"}, {"_id": 0, "batch": 0})
    assert doc == {
        "event_id": "p1",
        "type": "purchase",
        "user_id": "u1",
        "session_id": "s-1",
        "timestamp": t.replace(microsecond=t.microsecond // 1000 * 1000),
        "product_id": "shoe-1",
        "quantity": 2,
        "price": {"amount": 8500, "currency": "EUR"},
        "order_id": "o-1",
        "recommendation_id": "rec-9",
        "position": 2,
        "page_type": "checkout",
        "confirmed": True,  # sent without a storefront's mark: a merchant fact
    }


async def test_product_stats_are_anonymous_daily_counts(shop: Store) -> None:
    await ingest(
        shop,
        [
            ev("v1"),
            ev("v2", user_id="u2"),
            ev("b1", "purchase", quantity=3),
            ev("v3", product_id="sock.1", timestamp=at(60 * 24)),
            ev("s1", "search"),
        ],
    )
    docs = await shop.collection("product_stats").find({}, {"_id": 0}).sort("day", 1).to_list(None)
    assert [(d["product_id"], d["counts"], d.get("units")) for d in docs] == [
        ("sock.1", {"view": 1}, None),
        ("shoe-1", {"view": 2, "purchase": 1}, 3),
    ]
    assert all(d["day"].hour == 0 and d["day"].minute == 0 for d in docs)
    assert not any("user_id" in d or "session_id" in d for d in docs)


async def test_listeners_see_stored_events_and_cannot_break_ingestion(shop: Store) -> None:
    seen: list[Mapping[str, Any]] = []

    async def remember(event: Mapping[str, Any]) -> None:
        seen.append(event)

    async def broken(event: Mapping[str, Any]) -> None:
        raise RuntimeError("plugin bug")

    results = await ingest(shop, [ev("a"), ev("a"), ev("b", "click")], listeners=[broken, remember])
    assert [r.status for r in results][:2] == [EventStatus.ACCEPTED, EventStatus.DUPLICATE]
    assert [e["event_id"] for e in seen] == ["a", "b"]
    assert seen[0]["user_id"] == "u1" and seen[0]["type"] == "view"


# -- consent -----------------------------------------------------------------------------------


async def test_consent_off_stores_no_personal_event(shop: Store) -> None:
    await privacy.set_consent(shop, "private", False)
    batch = [
        ev("n1", user_id="private", session_id="sess-p"),
        ev("n2", "purchase", user_id="private", order_id="o-77"),
        ev("n3", "search", user_id="private", query="red shoes"),
        ev("n4", "review", user_id="private", review="Great"),
        ev("y1", user_id="open"),
    ]
    results = await ingest(shop, batch)
    assert [r.status for r in results] == [EventStatus.ACCEPTED] * 5
    assert [r.event_id for r in results] == ["n1", "n2", "n3", "n4", "y1"]  # echoed, not kept
    personal = await shop.collection("events").find({"anonymous": {"$ne": True}}).to_list(None)
    assert [d["event_id"] for d in personal] == ["y1"]
    receipts = await shop.collection("events").find({"anonymous": True}, {"_id": 0}).to_list(None)
    assert len(receipts) == 4
    forbidden = {"user_id", "session_id", "order_id", "query", "review", "price", "batch"}
    assert all(not forbidden & set(r) for r in receipts)
    assert all(r["timestamp"].hour == 0 and r["timestamp"].minute == 0 for r in receipts)
    doc = await shop.collection("profiles").find_one({"user_id": "private"}, {"_id": 0})
    assert set(doc) == {"user_id", "consent", "updated_at"}
    stats = await shop.collection("product_stats").find_one({"product_id": "shoe-1"})
    assert stats["counts"] == {"view": 2, "purchase": 1, "review": 1}
    # A retried batch is still recognised, through the hashed receipt id.
    again = await ingest(shop, batch)
    assert [r.status for r in again] == [EventStatus.DUPLICATE] * 5
    stats = await shop.collection("product_stats").find_one({"product_id": "shoe-1"})
    assert stats["counts"] == {"view": 2, "purchase": 1, "review": 1}
    profile = await profiles.load_profile(shop, "private")
    assert profile is not None and not profile.consent_personalization
    assert profile.category_affinities == () and profile.purchases == {}


async def test_withdrawing_consent_deletes_behaviour_data(shop: Store) -> None:
    await ingest(shop, [ev("a", session_id="s1", user_id="u1"), ev("b", "purchase")])
    await events.identify(shop, shop.settings, "s1", "u1")
    state = await privacy.set_consent(shop, "u1", False)
    assert {k: n for k, n in state.deleted.items() if n} == {"events": 2, "session_links": 1}
    assert set(state.deleted) == {c.name for c in privacy.BEHAVIOUR_DATA}
    assert await shop.collection("events").count_documents({}) == 0
    doc = await shop.collection("profiles").find_one({"user_id": "u1"}, {"_id": 0})
    assert set(doc) == {"user_id", "consent", "updated_at"}
    assert doc["consent"]["personalization"] is False
    await privacy.set_consent(shop, "u1", True)
    await ingest(shop, [ev("c")])
    profile = await profiles.load_profile(shop, "u1")
    assert profile is not None and profile.recently_viewed == ("shoe-1",)


async def test_opt_in_mode_keeps_events_anonymous_until_consent(mongo_uri: str) -> None:
    settings = test_settings(mongo_uri, personalization_requires_consent=True)
    store_ = await _open(settings)
    try:
        await seed_products(store_)
        await ingest_events(store_, settings, [ev("before")])
        assert await store_.collection("events").count_documents({"user_id": "u1"}) == 0
        assert await profiles.load_profile(store_, "u1") is None
        with pytest.raises(profiles.ConsentWithheld):
            await profiles.set_preferences(store_, "u1", {"brands": ["Stride"]})
        await privacy.set_consent(store_, "u1", True)
        await ingest_events(store_, settings, [ev("after")])
        assert await store_.collection("events").count_documents({"user_id": "u1"}) == 1
        profile = await profiles.load_profile(store_, "u1")
        assert profile is not None and profile.consent_personalization
        assert profile.recently_viewed == ("shoe-1",)
    finally:
        await store_.drop_database()
        await store_.close()


# -- identify ----------------------------------------------------------------------------------


async def test_identify_merges_an_anonymous_session_once(shop: Store) -> None:
    anonymous = [
        ev("a1", session_id="s-anon", timestamp=at(30)),
        ev("a2", "add_to_cart", session_id="s-anon", product_id="sock.1", timestamp=at(29)),
        ev("a3", "search", session_id="s-anon", timestamp=at(28)),
    ]
    await ingest(shop, anonymous)
    assert await shop.collection("profiles").count_documents({}) == 0
    results = await asyncio.gather(
        *(events.identify(shop, shop.settings, "s-anon", "u1") for _ in range(4))
    )
    assert sum(r.merged_events for r in results) == 3 and all(r.linked for r in results)
    assert await events.identify(shop, shop.settings, "s-anon", "u1") == events.IdentifyResult(
        "s-anon", "u1", linked=True, merged_events=0
    )
    # Later anonymous events of the session belong to the shopper.
    await ingest(shop, [ev("a4", "view", session_id="s-anon", product_id="shoe-2")])
    assert await shop.collection("events").count_documents({"user_id": "u1"}) == 4
    doc = await shop.collection("profiles").find_one({"user_id": "u1"})
    assert doc["counts"] == {"view": 2, "add_to_cart": 1, "search": 1}
    assert doc["sessions"] == 1
    profile = await profiles.load_profile(shop, "u1")
    assert profile is not None
    assert profile.recently_viewed == ("shoe-2", "shoe-1")
    assert profile.cart == (("sock.1", 1),)
    # Stats were counted when the events arrived, not again when they were merged.
    stats = await shop.collection("product_stats").find_one({"product_id": "shoe-1"})
    assert stats["counts"] == {"view": 1}


async def test_a_session_belongs_to_one_shopper(shop: Store) -> None:
    await events.identify(shop, shop.settings, "s1", "u1")
    with pytest.raises(events.IdentifyError, match="already linked to another shopper"):
        await events.identify(shop, shop.settings, "s1", "u2")
    with pytest.raises(events.IdentifyError, match="e-mail"):
        await events.identify(shop, shop.settings, "s2", "ann@example.com")


async def test_identify_respects_consent_and_erasure(shop: Store) -> None:
    await ingest(shop, [ev("a", session_id="s1")])
    await privacy.set_consent(shop, "private", False)
    result = await events.identify(shop, shop.settings, "s1", "private")
    assert not result.linked and result.merged_events == 0
    assert await shop.collection("session_links").count_documents({}) == 0
    await privacy.erase_user(shop, "gone")
    with pytest.raises(privacy.UserErased):
        await events.identify(shop, shop.settings, "s1", "gone")


# -- recovery ----------------------------------------------------------------------------------


@pytest.fixture
async def fail_next_update(store: Store) -> Any:
    """Make the server fail the next `update` command (a database hiccup mid-batch)."""

    async def arm() -> None:
        await store.client.admin.command(
            "configureFailPoint",
            "failCommand",
            mode={"times": 1},
            data={"failCommands": ["update"], "errorCode": 2},
        )

    yield arm
    await store.client.admin.command("configureFailPoint", "failCommand", mode="off")


async def test_a_batch_interrupted_by_the_database_is_finished_by_its_retry(
    shop: Store, fail_next_update: Any
) -> None:
    # Searches have no product, so the profile upsert is the batch's only `update` command.
    batch = [ev(f"q{i}", "search", query=f"query {i}", session_id=f"s{i % 2}") for i in range(6)]
    for raw in batch:
        raw["user_id"] = "u1"
    now = datetime.now(UTC)
    await fail_next_update()
    with pytest.raises(PyMongoError, match="failCommand"):
        await ingest(shop, batch, now=now)
    assert await shop.collection("events").count_documents({}) == 6
    assert await shop.collection("profiles").count_documents({}) == 0
    # A retry straight away must not race the request that may still be writing ...
    soon = await ingest(shop, batch, now=now + timedelta(seconds=1))
    assert [r.status for r in soon] == [EventStatus.DUPLICATE] * 6
    assert await shop.collection("profiles").count_documents({}) == 0
    # ... a later one finishes the batch, exactly once.
    later = now + events.recovery_grace(shop.settings) + timedelta(seconds=1)
    await ingest(shop, batch, now=later)
    await ingest(shop, batch, now=later)
    assert await events.finish_open_batches(shop, shop.settings, now=later) == 0
    doc = await shop.collection("profiles").find_one({"user_id": "u1"})
    assert doc["counts"] == {"search": 6}
    assert doc["sessions"] == 2


async def test_finish_open_batches_applies_orphaned_events(shop: Store) -> None:
    """A batch whose request died after inserting (simulated: events with a token, an open
    marker, no profile) is applied by the sweep, and only once."""
    t = at(10)
    token = "orphan-1"
    docs = [
        {**ev(f"o{i}", timestamp=t), "timestamp": t.replace(microsecond=0), "batch": token}
        for i in range(3)
    ]
    await shop.collection("events").insert_many(docs)
    await shop.collection("ingest_batches").insert_one({"_id": token, "at": t, "done": False})
    later = datetime.now(UTC) + events.recovery_grace(shop.settings)
    assert await events.finish_open_batches(shop, shop.settings, now=later) == 1
    assert await events.finish_open_batches(shop, shop.settings, now=later) == 0
    doc = await shop.collection("profiles").find_one({"user_id": "u1"})
    assert doc["counts"] == {"view": 3}


async def test_profile_writes_for_a_batch_apply_once(shop: Store) -> None:
    """The guards themselves: applying the same batch's updates twice changes nothing."""
    stored = [dataclasses.asdict(r) for r in await ingest(shop, [ev("x", "add_to_cart")])]
    assert stored[0]["status"] == EventStatus.ACCEPTED
    event = await shop.collection("events").find_one({"event_id": "x"}, {"_id": 0})
    facts = await profiles.product_facts(shop, ["shoe-1"])
    updates = profiles.build_updates([event], facts, shop.settings, event["batch"], at(0))
    await profiles.apply_updates(shop, updates)
    await profiles.apply_updates(shop, updates)
    profile = await profiles.load_profile(shop, "u1")
    assert profile is not None and profile.cart == (("shoe-1", 1),)
    doc = await shop.collection("profiles").find_one({"user_id": "u1"})
    assert doc["counts"] == {"add_to_cart": 1}


def test_event_types_match_the_settings() -> None:
    from shopfront.platform.vocabulary import EVENT_TYPES, EventType

    assert tuple(EventType) == tuple(EventType(t) for t in EVENT_TYPES)
    assert set(Settings().event_weight_map) == set(EVENT_TYPES)
    assert {str(t) for t in events.PageType} == {"home", "product", "category", "cart"} | {
        "search",
        "checkout",
    }


@pytest.mark.parametrize("driver", ["motor", "pymongo"])
async def test_the_whole_flow_on_both_drivers(mongo_uri: str, driver: str) -> None:
    settings = test_settings(mongo_uri, mongo_driver=driver)
    store_ = await _open(settings)
    try:
        await seed_products(store_)
        batch = [
            ev("a", session_id="s1"),
            ev("b", "add_to_cart", user_id="u1", session_id="s1"),
            ev("c", "purchase", user_id="u1"),
            ev("b", "add_to_cart", user_id="u1"),
            ev("d", user_id="nope@example.com"),
        ]
        results = await ingest_events(store_, settings, batch)
        assert [r.status.value for r in results] == [
            "accepted",
            "accepted",
            "accepted",
            "duplicate",
            "rejected",
        ]
        assert (await events.identify(store_, settings, "s1", "u1")).merged_events == 1
        profile = await profiles.load_profile(store_, "u1")
        assert profile is not None and profile.orders == 1 and profile.sessions == 1
        export = await privacy.export_user_data(store_, "u1")
        assert len(export["collections"]["events"]) == 3
        report = await privacy.erase_user(store_, "u1")
        assert {k: n for k, n in report.deleted.items() if n} == {
            "events": 3,
            "profiles": 1,
            "session_links": 1,
        }
        assert await events.finish_open_batches(store_, settings) == 0
    finally:
        await store_.drop_database()
        await store_.close()
