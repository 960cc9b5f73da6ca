"""Each built-in strategy on small hand-made data where the right answer is known."""

from __future__ import annotations

from datetime import timedelta

import pytest
from shopfront.plugins.recommenders import (
    also_viewed,
    bought_together,
    buy_again,
    recently_viewed,
    recommended_for_you,
    session,
    similar_items,
    trending,
)
from shopfront.shoppers.context import PageType
from shopfront.shoppers.profile_view import Profile, Purchase, StatedPreferences

from tests.plugins.recommenders.kit import NOW, event, ids, product, request, setup, slot, training

CATALOG = [
    product("run1", "Trail Runner X", category=("Shoes", "Running"), brand="Swift"),
    product("run2", "Road Runner", category=("Shoes", "Running"), brand="Swift"),
    product("hike1", "Mountain Boot", category=("Shoes", "Hiking"), brand="Peak"),
    product("sock1", "Running Socks", category=("Apparel", "Socks"), brand="Swift"),
    product("cap1", "Sun Cap", category=("Apparel", "Hats"), brand="Peak"),
    product("bottle", "Water Bottle", category=("Gear",), brand="Flow"),
]


async def fitted(module, name, events, config=None, products=CATALOG):  # type: ignore[no-untyped-def]
    strategy = module.create(setup(name, config))
    await strategy.fit(training(products, events))
    return strategy


# -- trending ------------------------------------------------------------------------------


async def test_trending_ranks_recent_weighted_events_and_serves_the_page_category() -> None:
    events = [
        *[event("view", f"u{i}", "hike1", days_ago=1) for i in range(5)],
        *[event("purchase", f"u{i}", "run2", days_ago=1) for i in range(2)],  # 2 x 5 = 10
        *[event("purchase", f"u{i}", "run1", days_ago=60) for i in range(20)],  # decayed away
        event("view", "u1", "cap1", days_ago=2),
    ]
    strategy = await fitted(trending, "trending", events)
    home = await strategy.recommend(request(CATALOG), slot("trending"))
    assert ids(home)[:3] == ["run2", "hike1", "cap1"]
    assert home[0].reasons[0].text == "Popular this week"

    page = request(CATALOG, page=PageType.CATEGORY, category_path=("Shoes", "Running"))
    running = await strategy.recommend(page, slot("trending"))
    assert ids(running)[:2] == ["run2", "run1"]  # the category's own list comes first
    assert running[0].reasons[0].text == "Popular in Running this week"
    assert [c.score for c in running] == sorted((c.score for c in running), reverse=True)


async def test_trending_without_events_shows_the_newest_products() -> None:
    products = [
        product("old", created_at=NOW - timedelta(days=30)),
        product("new", created_at=NOW - timedelta(days=1)),
    ]
    strategy = await fitted(trending, "trending", [], products=products)
    found = await strategy.recommend(request(products), slot("trending"))
    assert ids(found) == ["new", "old"]
    assert found[0].reasons[0].text == "New arrivals"


async def test_trending_leaves_out_inactive_products() -> None:
    products = [product("a", active=False), product("b")]
    events = [event("purchase", "u1", "a"), event("view", "u1", "b")]
    strategy = await fitted(trending, "trending", events, products=products)
    assert ids(await strategy.recommend(request(products), slot("trending"))) == ["b"]


# -- recently viewed -----------------------------------------------------------------------


async def test_recently_viewed_merges_session_and_profile_newest_first() -> None:
    strategy = recently_viewed.create(setup("recently_viewed"))
    profile = Profile("u1", NOW, recently_viewed=("run1", "cap1", "hike1"))
    ctx = request(CATALOG, profile=profile, session_recent=("sock1", "run1"), product_id="hike1")
    found = await strategy.recommend(ctx, slot("recently_viewed"))
    assert ids(found) == ["sock1", "run1", "cap1"]  # the page's product is left out


async def test_recently_viewed_needs_consent() -> None:
    strategy = recently_viewed.create(setup("recently_viewed"))
    profile = Profile("u1", NOW, recently_viewed=("run1",), consent_personalization=False)
    assert await strategy.recommend(request(CATALOG, profile=profile), slot("x")) == []


# -- buy again -----------------------------------------------------------------------------


async def test_buy_again_ranks_by_own_frequency_and_due_date() -> None:
    # Everyone rebuys bottles about every 10 days: the interval is learned.
    events = [
        event("purchase", f"u{u}", "bottle", days_ago=100 - 10 * k, order=f"o{u}-{k}")
        for u in range(3)
        for k in range(4)
    ]
    strategy = await fitted(buy_again, "buy_again", events)
    assert strategy.state.intervals == {"bottle": pytest.approx(10.0)}
    profile = Profile(
        "me",
        NOW,
        purchases={
            "bottle": Purchase(6, NOW - timedelta(days=10)),  # often, and due now
            "sock1": Purchase(1, NOW - timedelta(days=5)),
            "cap1": Purchase(2, NOW - timedelta(days=400)),  # long ago
        },
    )
    found = await strategy.recommend(request(CATALOG, profile=profile), slot("buy_again"))
    assert ids(found) == ["bottle", "sock1", "cap1"]
    assert found[0].reasons[0].text == "Time to restock? You usually buy this every 10 days"
    assert found[1].reasons[0].text == "You bought this before"


async def test_buy_again_follows_each_shoppers_own_rhythm() -> None:
    strategy = await fitted(buy_again, "buy_again", [])  # no shop-wide intervals learned

    def bought(count: int, every: int, last: int) -> Purchase:
        last_at = NOW - timedelta(days=last)
        return Purchase(count, last_at, last_at - timedelta(days=every * (count - 1)))

    # Same counts; only the rhythm differs: the one due today leads, then the lapsed one (five
    # intervals late), then the one bought yesterday (not due for a month).
    profile = Profile(
        "me",
        NOW,
        purchases={
            "bottle": bought(5, every=30, last=1),
            "sock1": bought(5, every=7, last=7),
            "cap1": bought(5, every=7, last=35),
        },
    )
    found = await strategy.recommend(request(CATALOG, profile=profile), slot("buy_again"))
    assert ids(found) == ["sock1", "cap1", "bottle"]
    assert found[0].reasons[0].text == "Time to restock? You usually buy this every 7 days"
    other = Profile(
        "you",
        NOW,
        purchases={"bottle": bought(5, every=30, last=30), "sock1": bought(5, every=7, last=1)},
    )
    found = await strategy.recommend(request(CATALOG, profile=other), slot("buy_again"))
    assert ids(found)[0] == "bottle"  # another shopper, another rhythm


# -- similar items -------------------------------------------------------------------------


async def test_similar_items_finds_the_obvious_twin_and_serves_products_nobody_bought() -> None:
    products = [
        product(
            "a",
            "Trail running shoe",
            description="grippy lugged sole for mud trails",
            category=("Shoes", "Running"),
            brand="Swift",
            tags=("trail",),
        ),
        product(
            "b",
            "Trail running shoe II",
            description="lugged sole for muddy trails",
            category=("Shoes", "Running"),
            brand="Swift",
            tags=("trail",),
        ),
        product(
            "c",
            "Leather office shoe",
            description="polished leather for the office",
            category=("Shoes", "Formal"),
            brand="Oxford",
        ),
        product(
            "d",
            "Woollen scarf",
            description="warm winter scarf",
            category=("Apparel", "Scarves"),
            brand="Knit",
        ),
    ]
    strategy = await fitted(similar_items, "similar_items", [], products=products)
    found = await strategy.recommend(request(products, product_id="a"), slot("similar_items"))
    assert ids(found)[0] == "b"  # no events at all: content alone
    assert "d" not in ids(found)  # another department
    assert found[0].reasons[0].text == "Similar to Trail running shoe"


async def test_similar_items_for_a_product_added_after_training_uses_its_category() -> None:
    events = [event("view", "u1", "run2"), event("purchase", "u2", "run2")]
    strategy = await fitted(similar_items, "similar_items", events)
    newcomer = product("run9", "Brand new runner", category=("Shoes", "Running"))
    found = await strategy.recommend(
        request([*CATALOG, newcomer], product_id="run9"), slot("similar_items")
    )
    assert ids(found)[0] == "run2"
    assert found[0].reasons[0].text == "More in Running"


async def test_similar_items_in_projected_space_for_large_departments() -> None:
    products = [
        product(
            f"p{i}",
            f"item {i % 5} colour{i % 3}",
            description=f"word{i % 5} thing",
            category=("All", f"Group{i % 5}"),
        )
        for i in range(40)
    ]
    strategy = await fitted(
        similar_items, "similar_items", [], {"exact_max_items": 10, "dimensions": 8}, products
    )
    found = await strategy.recommend(request(products, product_id="p0"), slot("s", limit=4))
    assert all(int(pid[1:]) % 5 == 0 for pid in ids(found)[:4])  # same group wins


# -- also viewed and bought together -------------------------------------------------------


async def test_also_viewed_pairs_what_the_same_shoppers_viewed() -> None:
    events = [
        *[event("view", f"u{i}", "run1") for i in range(6)],
        *[event("view", f"u{i}", "sock1") for i in range(5)],  # 5 of the 6 also saw socks
        event("view", "u0", "cap1"),
        *[event("view", f"v{i}", "cap1") for i in range(5)],
    ]
    strategy = await fitted(also_viewed, "also_viewed", events)
    found = await strategy.recommend(request(CATALOG, product_id="run1"), slot("also_viewed"))
    assert ids(found) == ["sock1", "cap1"]
    assert found[0].reasons[0].text == "Shoppers who viewed Trail Runner X also viewed this"


async def test_also_viewed_seeds_with_recent_history_off_product_pages() -> None:
    events = [
        *[event("view", f"u{i}", "run1") for i in range(4)],
        *[event("view", f"u{i}", "sock1") for i in range(4)],
        *[event("view", f"v{i}", "hike1") for i in range(4)],
        *[event("view", f"v{i}", "cap1") for i in range(4)],
    ]
    strategy = await fitted(also_viewed, "also_viewed", events)
    profile = Profile("me", NOW, recently_viewed=("hike1", "run1"))  # hike1 is the newest
    found = await strategy.recommend(request(CATALOG, profile=profile), slot("also_viewed"))
    assert ids(found) == ["cap1", "sock1"]
    assert found[0].reasons[0].text == "Because you viewed Mountain Boot"


async def test_bought_together_the_obvious_co_purchase_wins() -> None:
    events = []
    for k in range(5):
        events += [
            event("purchase", f"u{k}", "run1", order=f"o{k}"),
            event("purchase", f"u{k}", "sock1", order=f"o{k}"),
        ]
    events += [
        event("purchase", "u9", "run1", order="o9"),
        event("purchase", "u9", "cap1", order="o9"),
    ]  # once: below min support
    events += [
        event("purchase", "u8", "run1", days_ago=3),
        event("purchase", "u8", "sock1", days_ago=3),
    ]  # no order id: same shopper and day
    strategy = await fitted(bought_together, "bought_together", events)
    found = await strategy.recommend(request(CATALOG, product_id="run1"), slot("x"))
    assert ids(found) == ["sock1"]
    assert found[0].reasons[0].text == "Often bought with Trail Runner X"
    cart = await strategy.recommend(request(CATALOG, cart=["sock1"]), slot("x"))
    assert ids(cart) == ["run1"]


# -- recommended for you -------------------------------------------------------------------


async def test_recommended_for_you_completes_the_pattern_from_recent_history() -> None:
    # Shoppers who bought run1 and sock1 also bought bottle; hikers bought hike1 + cap1.
    events = []
    for i in range(8):
        events += [event("purchase", f"r{i}", pid) for pid in ("run1", "sock1", "bottle")]
        events += [event("purchase", f"h{i}", pid) for pid in ("hike1", "cap1")]
    strategy = await fitted(recommended_for_you, "recommended_for_you", events, {"l2": 1.0})
    profile = Profile("me", NOW, recently_viewed=("run1", "sock1"))
    found = await strategy.recommend(request(CATALOG, profile=profile), slot("x"))
    assert ids(found)[0] == "bottle"
    assert found[0].reasons[0].text.startswith("Because you viewed")


async def test_recommended_for_you_cold_start_uses_stated_preferences_then_popularity() -> None:
    events = [event("purchase", f"u{i}", "bottle") for i in range(5)] + [
        event("view", "u1", "hike1")
    ]
    strategy = await fitted(recommended_for_you, "recommended_for_you", events)
    newcomer = Profile("new", NOW, preferences=StatedPreferences(categories=("Shoes > Hiking",)))
    found = await strategy.recommend(request(CATALOG, profile=newcomer), slot("x"))
    assert ids(found)[:2] == ["hike1", "bottle"]
    assert found[0].reasons[0].text == "Popular in Hiking, which you told us you like"
    assert found[1].reasons[0].text == "Popular right now"


async def test_recommended_for_you_bounds_itself_to_the_most_active_products() -> None:
    events = [event("view", f"u{i}", "run1") for i in range(5)]
    events += [event("view", f"u{i}", "sock1") for i in range(4)]
    events += [event("view", "u0", "cap1")]
    strategy = await fitted(recommended_for_you, "recommended_for_you", events, {"max_items": 2})
    assert set(strategy.state.weights.item_ids) == {"run1", "sock1"}


async def test_personal_strategies_return_nothing_without_consent() -> None:
    events = [event("purchase", f"u{i}", pid) for i in range(3) for pid in ("run1", "sock1")]
    profile = Profile(
        "me",
        NOW,
        consent_personalization=False,
        recently_viewed=("run1",),
        purchases={"run1": Purchase(2, NOW)},
    )
    ctx = request(CATALOG, profile=profile, session_recent=("run1",))
    for module, name in [
        (recommended_for_you, "recommended_for_you"),
        (buy_again, "buy_again"),
        (session, "session"),
        (also_viewed, "also_viewed"),
    ]:
        strategy = await fitted(module, name, events)
        assert await strategy.recommend(ctx, slot(name)) == [], name


# -- session -------------------------------------------------------------------------------


async def test_session_gives_a_first_time_visitor_personal_results_after_two_clicks() -> None:
    events = []
    for k in range(6):  # sessions that go run1 -> sock1 -> bottle, and hikers hike1 -> cap1
        events += [
            event("view", None, pid, session=f"s{k}", days_ago=2 - 0.001 * j)
            for j, pid in enumerate(("run1", "sock1", "bottle"))
        ]
        events += [
            event("view", f"h{k}", pid, days_ago=3 - 0.001 * j)  # no session id
            for j, pid in enumerate(("hike1", "cap1"))
        ]
    strategy = await fitted(session, "session", events)
    visitor = request(CATALOG, session_recent=("sock1", "run1"))
    found = await strategy.recommend(visitor, slot("session"))
    assert ids(found) == ["bottle"]
    assert found[0].reasons[0].text == "Because you viewed Running Socks"
    hiker = await strategy.recommend(request(CATALOG, session_recent=("hike1",)), slot("s"))
    assert ids(hiker) == ["cap1"]


# -- all -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [trending, similar_items, also_viewed, bought_together, recommended_for_you, session],
)
async def test_untrained_strategies_return_nothing(module) -> None:  # type: ignore[no-untyped-def]
    strategy = module.create(setup(module.NAME))
    profile = Profile("me", NOW, recently_viewed=("run1",), purchases={"run1": Purchase(1, NOW)})
    assert await strategy.recommend(request(CATALOG, profile=profile), slot("x")) == []


@pytest.mark.parametrize("module", [trending, similar_items, recommended_for_you, session])
def test_config_out_of_range_names_the_key(module) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=r"neighbours|half_life_days"):
        key = "half_life_days" if module is trending else "neighbours"
        module.create(setup(module.NAME, {key: 0}))
