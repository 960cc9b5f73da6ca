"""Privacy (shopfront.shoppers.privacy): erasure everywhere, export of one shopper only, opaque
ids."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from shopfront.platform.store import USER_DATA, Store
from shopfront.shoppers import events, privacy, profiles

from tests.shoppers.event_helpers import at, ev, seed_products, walk_strings

ERASED = "shopper-7f3a"
OTHER = "shopper-b2c4"


async def build_shopper(store: Store, user_id: str, session: str) -> None:
    """A shopper with something in every place Shopfront keeps shopper data."""
    await events.ingest_events(
        store,
        store.settings,
        [
            ev(f"{user_id}-anon", session_id=session, timestamp=at(20)),
            ev(f"{user_id}-v", user_id=user_id, session_id=session, timestamp=at(10)),
            ev(f"{user_id}-c", "add_to_cart", user_id=user_id, product_id="sock.1"),
            ev(f"{user_id}-b", "purchase", user_id=user_id, order_id=f"{user_id}-order"),
            ev(f"{user_id}-r", "review", user_id=user_id, rating=5, review="Lovely"),
            ev(f"{user_id}-s", "search", user_id=user_id, query="wool socks"),
        ],
    )
    await events.identify(store, store.settings, session, user_id)
    await profiles.set_preferences(store, user_id, {"brands": ["Stride"], "sizes": ["M"]})
    await privacy.set_consent(store, user_id, True)


async def documents_mentioning(store: Store, needle: str) -> list[tuple[str, Any]]:
    """Every document, in every collection of the database, with ``needle`` in any string."""
    found = []
    for name in await store.collection_names():
        async for doc in store.collection(name).find():
            if any(needle in s for s in walk_strings(doc)):
                found.append((name, doc))
    return found


@pytest.fixture
async def shop(store: Store) -> Store:
    await seed_products(store)
    await build_shopper(store, ERASED, "sess-erased")
    await build_shopper(store, OTHER, "sess-other")
    return store


async def test_erasure_leaves_no_trace_and_spares_others(shop: Store) -> None:
    plugin_state = shop.collection("plugin_wishlists")
    await plugin_state.insert_many([{"shopper": ERASED, "items": ["shoe-1"]}, {"shopper": OTHER}])

    async def forget_wishlist(user_id: str, sessions: Sequence[str]) -> int:
        res = await plugin_state.delete_many({"shopper": user_id})
        return int(res.deleted_count)

    assert await documents_mentioning(shop, ERASED)  # the scan does find the shopper before
    now = datetime.now(UTC)
    other_before = await privacy.export_user_data(shop, OTHER, now)

    report = await privacy.erase_user(shop, ERASED, erasers=[forget_wishlist])

    assert await documents_mentioning(shop, ERASED) == []
    assert {name: n for name, n in report.deleted.items() if n} == {
        "consents": 1,
        "events": 6,  # including the anonymous one that identify merged
        "profiles": 1,
        "session_links": 1,
        "plugin:test_erasure_leaves_no_trace_and_spares_others.<locals>.forget_wishlist": 1,
    }
    assert not report.already_erased and report.complete
    assert await privacy.export_user_data(shop, OTHER, now) == other_before
    # Aggregates stay: they never named anyone.
    assert await shop.collection("product_stats").count_documents({}) > 0
    # Idempotent: a second request deletes nothing and says so.
    again = await privacy.erase_user(shop, ERASED, erasers=[forget_wishlist])
    assert again.already_erased and again.total == 0


async def test_erasure_reports_a_failing_plugin(shop: Store) -> None:
    async def broken(user_id: str, sessions: Sequence[str]) -> int:
        raise RuntimeError("plugin down")

    report = await privacy.erase_user(shop, ERASED, erasers=[broken])
    assert not report.complete and report.failures == (
        "test_erasure_reports_a_failing_plugin.<locals>.broken",
    )
    assert report.deleted["profiles"] == 1  # everything else was still erased


async def test_late_and_racing_writes_for_an_erased_shopper_are_dropped(shop: Store) -> None:
    await privacy.erase_user(shop, ERASED)
    results = await events.ingest_events(
        shop, shop.settings, [ev("late", user_id=ERASED), ev("late-anon", session_id="sess-erased")]
    )
    assert results[0].status is events.EventStatus.REJECTED
    # The shopper's sessions were erased with them: their new events are refused too.
    assert results[1].status is events.EventStatus.REJECTED
    assert results[1].reason is not None and results[1].reason.startswith("session_id:")
    assert await documents_mentioning(shop, ERASED) == []
    assert await documents_mentioning(shop, "sess-erased") == []
    with pytest.raises(privacy.UserErased):
        await privacy.set_consent(shop, ERASED, True)


async def test_export_holds_everything_about_the_shopper_and_nothing_else(shop: Store) -> None:
    data = await privacy.export_user_data(shop, ERASED)
    assert data["user_id"] == ERASED and data["erased"] is False
    collections = data["collections"]
    assert set(collections) == set(USER_DATA)
    assert sorted(e["event_id"] for e in collections["events"]) == sorted(
        f"{ERASED}-{s}" for s in ("anon", "v", "c", "b", "r", "s")
    )
    review = next(e for e in collections["events"] if e["type"] == "review")
    assert review["review"] == "Lovely" and review["rating"] == 5
    [profile_doc] = collections["profiles"]
    assert profile_doc["preferences"]["brands"] == ["Stride"]
    assert profile_doc["consent"]["personalization"] is True
    assert collections["session_links"][0]["_id"] == "sess-erased"
    assert data["profile"]["preferences"]["sizes"] == ["M"]
    assert data["profile"]["purchases"]["shoe-1"]["count"] == 1
    assert not any(OTHER in s for s in walk_strings(data))
    # One JSON document: only JSON types inside.
    import json

    assert json.loads(json.dumps(data)) == data


async def test_export_of_an_unknown_shopper_is_empty(store: Store) -> None:
    data = await privacy.export_user_data(store, "nobody")
    assert data["profile"] is None
    assert all(docs == [] for docs in data["collections"].values())


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ann@example.com", "e-mail"),
        ("user:ann.lee+shop@mail.example.co.uk", "e-mail"),
        ("10.1.2.3", "IP address"),
        ("::1", "IP address"),
        ("2001:0db8:85a3::8a2e:0370:7334", "IP address"),
        ("   ", "blank"),
        ("a\tb", "control characters"),
    ],
)
def test_identifiers_that_are_personal_data_are_refused(value: str, problem: str) -> None:
    reason = privacy.identifier_problem(value)
    assert reason is not None and problem in reason
    with pytest.raises(privacy.PrivacyError):
        privacy.check_user_id(value)


@pytest.mark.parametrize("value", ["u-123", "8f14e45f", "cust_0042", "10.1.2", "shop@home"])
def test_opaque_identifiers_pass(value: str) -> None:
    assert privacy.identifier_problem(value) is None


@given(
    st.from_regex(r"[a-z]{1,10}(\.[a-z]{1,5})?@[a-z]{1,10}\.(com|org|de)", fullmatch=True),
    st.text(alphabet=st.characters(blacklist_characters="@", blacklist_categories=("Cs",))),
)
def test_redaction_removes_every_email(address: str, text: str) -> None:
    redacted = privacy.redact(f"{text} {address} {text}")
    assert address not in redacted and "[email]" in redacted


@given(st.ip_addresses())
def test_redaction_removes_ip_addresses(address: Any) -> None:
    assert privacy.redact(f"from {address} today") == "from [ip] today"


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("from ::ffff:1.2.3.4 today", "from [ip] today"),
        ("from 1.2.3.4:8080 today", "from [ip]:8080 today"),
        ("from [2001:db8::1]:443 today", "from [[ip]]:443 today"),
        ("from fe80::1%eth0 today", "from [ip] today"),
        ("ip=10.0.0.1, host:10.0.0.2", "ip=[ip], host:[ip]"),
        ("at 12:30:45, version 1.2.3.4.5, size 10.5", "at 12:30:45, version 1.2.3.4.5, size 10.5"),
    ],
)
def test_redaction_of_addresses_in_context(text: str, redacted: str) -> None:
    assert privacy.redact(text) == redacted


def test_json_export_values() -> None:
    from shopfront.platform.money import Money

    assert privacy.to_json({"t": datetime(2026, 1, 2, tzinfo=UTC), "m": Money(5, "EUR")}) == {
        "t": "2026-01-02T00:00:00+00:00",
        "m": {"amount": 5, "currency": "EUR"},
    }
    assert privacy.to_json({"s": frozenset({"b", "a"}), "f": float("nan")}) == {
        "s": ["a", "b"],
        "f": None,
    }


@pytest.mark.parametrize("request_kind", ["erase", "withdraw"])
async def test_a_request_landing_mid_ingestion_still_wins(
    shop: Store, monkeypatch: pytest.MonkeyPatch, request_kind: str
) -> None:
    """Erasure (or withdrawal) that happens after a batch passed its checks but before its
    writes: the batch undoes its own writes for that shopper."""
    real_check = privacy.erased_users
    calls = 0

    async def check_then_request(store: Store, user_ids: Any) -> set[str]:
        nonlocal calls
        calls += 1
        answer = await real_check(store, user_ids)
        if calls == 1:  # the admission check has answered; now the request lands
            if request_kind == "erase":
                await privacy.erase_user(store, ERASED)
            else:
                await privacy.set_consent(store, ERASED, False)
        return answer

    monkeypatch.setattr(privacy, "erased_users", check_then_request)
    results = await events.ingest_events(
        shop, shop.settings, [ev("racing", user_id=ERASED, product_id="shoe-2")]
    )
    assert results[0].status is events.EventStatus.ACCEPTED  # it was, when it was checked
    assert calls >= 2
    assert await shop.collection("events").count_documents({"user_id": ERASED}) == 0
    doc = await shop.collection("profiles").find_one({"user_id": ERASED}, {"_id": 0})
    if request_kind == "erase":
        assert await documents_mentioning(shop, ERASED) == []
    else:
        assert set(doc) == {"user_id", "consent", "updated_at"}


async def test_the_consent_lookup_uses_an_index(store: Store) -> None:
    """Every ingested batch looks up its shoppers' consent: it must stay an index lookup as
    shoppers grow (on the embedded server a second predicate beside `_id $in` can turn the
    plan into a collection scan)."""
    await store.collection(privacy.CONSENTS).insert_many(
        [{"_id": f"u{i}", "personalization": i % 2 == 0} for i in range(50)]
    )
    plan = (
        await store.collection(privacy.CONSENTS).find(privacy.consent_query(["u1", "u7"])).explain()
    )
    assert "IXSCAN" in str(plan["queryPlanner"]["winningPlan"])


async def test_a_shared_session_never_leaks_or_loses_another_shoppers_events(
    store: Store,
) -> None:
    """A session linked to one shopper may also carry events that name another shopper
    (a shared device): those stay theirs, in export and in erasure."""
    await seed_products(store)
    await events.ingest_events(
        store,
        store.settings,
        [
            ev("anon", session_id="shared"),
            ev("theirs", user_id=OTHER, session_id="shared"),
        ],
    )
    await events.identify(store, store.settings, "shared", ERASED)
    await events.ingest_events(store, store.settings, [ev("later", session_id="shared")])
    export = await privacy.export_user_data(store, ERASED)
    assert sorted(e["event_id"] for e in export["collections"]["events"]) == ["anon", "later"]
    report = await privacy.erase_user(store, ERASED)
    assert report.deleted["events"] == 2
    assert await store.collection("events").distinct("event_id") == ["theirs"]
