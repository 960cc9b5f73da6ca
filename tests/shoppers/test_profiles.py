"""Profiles built from events (shopfront.shoppers.profiles): what each field means after real
writes."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shopfront.platform.money import Money
from shopfront.platform.store import Store, open_store
from shopfront.shoppers import decay, profiles
from shopfront.shoppers.events import ingest_events
from shopfront.testing import test_settings

from tests.shoppers.event_helpers import at, ev, seed_products


@pytest.fixture
async def shop(store: Store) -> Store:
    await seed_products(store, extra=6)
    return store


def ms(t: datetime) -> datetime:
    """``t`` as stored: MongoDB keeps milliseconds."""
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


async def ingest(store: Store, raws: list[dict[str, Any]]) -> None:
    results = await ingest_events(store, store.settings, raws)
    assert all(r.status.value == "accepted" for r in results), results


async def load(store: Store, now: datetime | None = None) -> profiles.Profile:
    found = await profiles.load_profile(store, "u1", now)
    assert found is not None
    return found


async def test_unknown_shopper_has_no_profile(shop: Store) -> None:
    assert await profiles.load_profile(shop, "nobody") is None


async def test_recently_viewed_is_newest_first_distinct_and_bounded(mongo_uri: str) -> None:
    settings = test_settings(mongo_uri, recently_viewed_max=3)
    store = await open_store(settings, settings.mongodb_uri)
    try:
        await seed_products(store, extra=6)
        await ingest(store, [ev("v1", product_id="g001", timestamp=at(50))])
        await ingest(
            store,
            [
                ev("v2", product_id="g002", timestamp=at(40)),
                ev("v3", product_id="g001", timestamp=at(30)),  # again: moves to the front
                ev("v4", product_id="g003", timestamp=at(20)),
            ],
        )
        assert (await load(store)).recently_viewed == ("g003", "g001", "g002")
        # A late event (older than what is known) takes its place by time, not by arrival.
        await ingest(store, [ev("v5", product_id="g004", timestamp=at(35))])
        assert (await load(store)).recently_viewed == ("g003", "g001", "g004")
        # Clicks and cart events are not views.
        await ingest(store, [ev("c1", "click", product_id="g005", timestamp=at(1))])
        assert (await load(store)).recently_viewed == ("g003", "g001", "g004")
    finally:
        await store.drop_database()
        await store.close()


async def test_concurrent_batches_for_one_shopper_lose_nothing(shop: Store) -> None:
    ids = [f"g00{i}" for i in range(6)]
    batches = [
        [
            ev(f"b{b}-{i}", product_id=ids[(b + i) % 6], timestamp=at(60 - b - i / 10))
            for i in range(3)
        ]
        for b in range(6)
    ]
    await asyncio.gather(*(ingest(shop, batch) for batch in batches))
    doc = await shop.collection("profiles").find_one({"user_id": "u1"})
    assert doc["counts"] == {"view": 18}
    profile = await load(shop)
    assert sorted(profile.recently_viewed) == sorted(ids)


async def test_cart_as_last_seen(shop: Store) -> None:
    await ingest(
        shop,
        [
            ev("a1", "add_to_cart", quantity=2, timestamp=at(10)),
            ev("a2", "add_to_cart", product_id="sock.1", timestamp=at(9)),
            ev("r1", "remove_from_cart", quantity=1, timestamp=at(8)),
        ],
    )
    profile = await load(shop)
    assert profile.cart == (("shoe-1", 1), ("sock.1", 1))  # most recently changed first
    # Removing more than is there empties the line (never negative), in a later batch.
    await ingest(shop, [ev("r2", "remove_from_cart", quantity=5, timestamp=at(7))])
    assert (await load(shop)).cart == (("sock.1", 1),)
    await ingest(shop, [ev("a3", "add_to_cart", quantity=3, timestamp=at(6))])
    assert (await load(shop)).cart == (("shoe-1", 3), ("sock.1", 1))
    # Buying a product takes it out of the cart.
    bought = at(5)
    await ingest(shop, [ev("p1", "purchase", timestamp=bought)])
    profile = await load(shop)
    assert profile.cart == (("sock.1", 1),)
    assert profile.cart_updated_at == ms(bought)


async def test_latest_rating_wins_even_out_of_order(shop: Store) -> None:
    await ingest(shop, [ev("r1", "rating", rating=2, timestamp=at(10))])
    await ingest(shop, [ev("r0", "rating", rating=5, timestamp=at(20))])  # older, late
    await ingest(shop, [ev("rv", "review", product_id="sock.1", rating=4, review="Warm")])
    await ingest(shop, [ev("rw", "review", product_id="$cap", review="No stars given")])
    assert (await load(shop)).ratings == {"shoe-1": 2, "sock.1": 4}


async def test_purchases_orders_price_band_and_spend(shop: Store) -> None:
    eur = "EUR"
    await ingest(
        shop,
        [
            ev(
                "b1", "purchase", order_id="o1", price={"amount": 1000, "currency": eur}, quantity=2
            ),
            ev(
                "b2",
                "purchase",
                order_id="o1",
                product_id="sock.1",
                price={"amount": 301, "currency": eur},
            ),
        ],
    )
    # The same order continues in another batch; a second order; one purchase in dollars.
    await ingest(
        shop,
        [
            ev(
                "b3",
                "purchase",
                order_id="o1",
                product_id="$cap",
                price={"amount": 500, "currency": eur},
            ),
            ev(
                "b4",
                "purchase",
                order_id="o2",
                price={"amount": 2000, "currency": eur},
                timestamp=at(0.5),
            ),
            ev("b5", "purchase", order_id="o3", price={"amount": 999, "currency": "USD"}),
        ],
    )
    profile = await load(shop)
    assert profile.orders == 3
    assert profile.purchases["shoe-1"].count == 3  # b1, b4 and b5 (times bought, not units)
    assert profile.purchases["sock.1"].count == 1 and profile.purchases["$cap"].count == 1
    # Typical unit price: mean of 1000, 301, 500, 2000 = 950.25 -> 950 (EUR: the most used).
    assert profile.typical_price == Money(950, eur)
    assert profile.total_spent == Money(2 * 1000 + 301 + 500 + 2000, eur)
    assert profile.last_purchase_at == profile.purchases["shoe-1"].last_at
    assert profile.last_purchase_at is not None and profile.last_purchase_at > at(0.6)


async def test_first_last_seen_sessions(shop: Store) -> None:
    first, last = at(100), at(10)
    await ingest(
        shop,
        [
            ev("x1", session_id="s1", user_id="u1", timestamp=at(90)),
            ev("x2", session_id="s1", user_id="u1", timestamp=at(80)),
            ev("x3", session_id="s2", user_id="u1", timestamp=last),
        ],
    )
    await ingest(shop, [ev("x4", session_id="s2", user_id="u1", timestamp=first)])  # late
    profile = await load(shop)
    assert profile.sessions == 2
    assert (profile.first_seen, profile.last_seen) == (ms(first), ms(last))


async def test_affinities_follow_weights_categories_and_not_interested(shop: Store) -> None:
    t = at(5)
    await ingest(
        shop,
        [
            ev("v", product_id="shoe-2", timestamp=t),  # view: 1
            ev("p", "purchase", product_id="sock.1", timestamp=t),  # purchase: 8
            ev("r", "rating", product_id="$cap", rating=1, timestamp=t),  # 3 x (1-3)/2 = -3
            ev("n", "not_interested", product_id="shoe-1", timestamp=t),  # -5
            ev("i", "impression", product_id="g001", timestamp=t),  # 0: no affinity at all
        ],
    )
    profile = await load(shop, t)
    cats = dict(profile.category_affinities)
    assert cats == pytest.approx(
        {
            "Socks": 8,
            "Shoes > Road": 1,
            "Shoes": 1 - 5,
            "Shoes > Trail": -5,
            "Accessories": -3,
            "Accessories > Hats": -3,
        }
    )
    assert [k for k, _ in profile.category_affinities][:2] == ["Socks", "Shoes > Road"]
    assert dict(profile.brand_affinities) == pytest.approx(
        {"Knit & Co.": 8, "Stride": -4, "Topper": -3}
    )
    assert dict(profile.tag_affinities) == pytest.approx(
        {"wool": 8, "running": 1, "outdoor": -5, "waterproof": -5}
    )
    assert profile.not_interested == frozenset({"shoe-1"})


async def test_affinities_decay_with_the_half_life(shop: Store) -> None:
    t = at(60)
    await ingest(shop, [ev("p", "purchase", product_id="sock.1", timestamp=t)])
    half_life = timedelta(days=shop.settings.affinity_half_life_days)
    now = t + half_life
    assert dict((await load(shop, now)).brand_affinities)["Knit & Co."] == pytest.approx(4)
    later = dict((await load(shop, now + half_life)).brand_affinities)["Knit & Co."]
    assert later == pytest.approx(2)
    expected = decay.decayed_weight(8, t, half_life.total_seconds(), now + half_life)
    assert math.isclose(later, expected, rel_tol=1e-9)


async def test_a_changed_half_life_keeps_old_sums_apart(mongo_uri: str) -> None:
    t = at(60)
    slow = test_settings(mongo_uri, affinity_half_life_days=30)
    store = await open_store(slow, slow.mongodb_uri)
    try:
        await seed_products(store)
        await ingest_events(store, slow, [ev("a", product_id="sock.1", timestamp=t)])
        fast = test_settings(
            mongo_uri, mongodb_database=slow.mongodb_database, affinity_half_life_days=1
        )
        fast_store = await open_store(fast, fast.mongodb_uri)
        try:
            await ingest_events(fast_store, fast, [ev("b", product_id="shoe-2", timestamp=t)])
            now = t + timedelta(days=30)
            profile = await profiles.load_profile(fast_store, "u1", now)
            assert profile is not None
            brands = dict(profile.brand_affinities)
            # Each sum decays at the half-life it was written with.
            assert brands["Knit & Co."] == pytest.approx(0.5)
            assert brands["Stride"] == pytest.approx(2**-30)
        finally:
            await fast_store.close()
    finally:
        await store.drop_database()
        await store.close()


async def test_stated_preferences_feed_affinities(shop: Store) -> None:
    await ingest(shop, [ev("v", product_id="shoe-2", timestamp=at(1))])
    stated = await profiles.set_preferences(
        shop,
        "u1",
        {
            "categories": ["Socks", "Shoes>Trail"],
            "brands": ["Topper"],
            "sizes": ["EU 42", "M"],
            "price_min": {"amount": 1000, "currency": "eur"},
            "price_max": {"amount": 9000, "currency": "EUR"},
            "answers": {"style": "outdoor", "gift": "no"},
        },
    )
    assert stated.categories == ("Socks", "Shoes > Trail")
    profile = await load(shop)
    assert profile.preferences == stated
    assert profile.preferences.price_min == Money(1000, "EUR")
    weight = shop.settings.preference_weight
    cats = dict(profile.category_affinities)
    assert cats["Socks"] == pytest.approx(weight)
    assert cats["Shoes > Trail"] == pytest.approx(weight)
    assert cats["Shoes"] == pytest.approx(weight + 1, rel=1e-3)  # stated prefix + the view
    assert dict(profile.brand_affinities)["Topper"] == pytest.approx(weight)
    # Stating again replaces what was stated.
    await profiles.set_preferences(shop, "u1", {"brands": ["Stride"]})
    profile = await load(shop)
    assert profile.preferences.categories == () and profile.preferences.brands == ("Stride",)
    assert "Socks" not in dict(profile.category_affinities)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"brands": "Stride"}, "brands: must be a list of strings"),
        ({"brands": [""]}, "brands: entries must be non-empty"),
        ({"sizes": ["x" * 201]}, "sizes: entries must be at most 200"),
        ({"brands": [f"b{i}" for i in range(51)]}, "brands: 51 entries; at most 50"),
        ({"categories": ["Shoes > > Trail"]}, "categories: 'Shoes > > Trail' has an empty level"),
        ({"price_min": {"amount": -1, "currency": "EUR"}}, "price_min.amount"),
        ({"price_min": {"amount": 1, "currency": "EURO"}}, "price_min.currency"),
        (
            {
                "price_min": {"amount": 5, "currency": "EUR"},
                "price_max": {"amount": 4, "currency": "EUR"},
            },
            "price_max: must not be below price_min",
        ),
        (
            {
                "price_min": {"amount": 5, "currency": "EUR"},
                "price_max": {"amount": 9, "currency": "USD"},
            },
            "price_max: must be in the same currency",
        ),
        ({"answers": ["a"]}, "answers: must map survey keys"),
        ({"answers": {"": "x"}}, "answers: '': keys must be non-empty"),
    ],
)
async def test_bad_preferences_are_explained(
    shop: Store, raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(profiles.ProfileError) as info:
        await profiles.set_preferences(shop, "u1", raw)
    assert str(info.value).startswith(message)
    assert await shop.collection("profiles").count_documents({}) == 0


async def test_preferences_need_consent(shop: Store) -> None:
    from shopfront.shoppers import privacy

    await privacy.set_consent(shop, "u1", False)
    with pytest.raises(profiles.ConsentWithheld):
        await profiles.set_preferences(shop, "u1", {"brands": ["Stride"]})
    doc = await shop.collection("profiles").find_one({"user_id": "u1"})
    assert "preferences" not in doc


def test_profile_reads_tolerate_a_dead_era() -> None:
    """An era far in the past contributes nothing and does not break the read."""
    settings = test_settings("mongodb://unused")
    doc = {
        "user_id": "u1",
        "aff": {
            "h60e-999": {"s": 0, "h": 60, "b": {"Old": 1e70}},
            "h2592000e0": {"s": decay.ORIGIN.timestamp(), "h": 2592000, "b": {"New": 1.0}},
        },
    }
    profile = profiles.profile_from_doc(doc, settings, decay.ORIGIN)
    assert profile.brand_affinities == (("New", 1.0),)
    assert profile.as_of == decay.ORIGIN and profile.as_of.tzinfo is UTC
