"""Composition of the storefront answer against the real database: one profile read, batched
product reads, blending and the hard rules, recorded recommendations, coupons, the priced
cart (failing closed), slot configuration and input validation."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from shopfront.catalog.products import Product, get_products, upsert_products
from shopfront.extend.config import config_from_mapping
from shopfront.extend.host import PluginHost
from shopfront.extend.records import Degradation
from shopfront.offers.contract import CouponStrategySpec, Promotion, PromotionSpec
from shopfront.offers.pricing import CartPricer
from shopfront.platform.config import ConfigError, Settings
from shopfront.platform.money import Money
from shopfront.platform.store import Store
from shopfront.plugins.promotions import promotion_stacking
from shopfront.recommend.contract import Candidate, Reason, Slot
from shopfront.shoppers.context import CartLine, PageType, RequestContext
from shopfront.shoppers.profile_view import Profile
from shopfront.storefront.composer import Storefront
from shopfront.storefront.request import SlotOverride, StorefrontInputError, StorefrontRequest
from shopfront.storefront.served_log import RECOMMENDATIONS
from shopfront.storefront.slots import (
    DEFAULT_SLOTS,
    enforce_rules,
    merge_by_score,
    slots_from_config,
)
from shopfront.storefront.sources import MAX_LOOKUP
from strawberry.dataloader import DataLoader

from tests.plugin_doubles import (
    GreedyPromotion,
    RaisingCoupon,
    RaisingPromotion,
    SpecPlugin,
    fixed_coupon,
    list_recommender,
    percent_off,
    product,
    product_doc,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class CountingProfiles:
    def __init__(self, profiles: dict[str, Profile] | None = None, fail: bool = False) -> None:
        self.profiles = profiles or {}
        self.loads: list[str] = []
        self.fail = fail

    async def load(self, user_id: str, now: datetime) -> Profile | None:
        self.loads.append(user_id)
        if self.fail:
            raise TimeoutError("profile store slow")
        return self.profiles.get(user_id)


class CountingLoader:
    """A product DataLoader that records each batch it fetches."""

    def __init__(self, store: Store) -> None:
        self.batches: list[list[str]] = []

        async def batch(ids: list[str]) -> list[Product | None]:
            self.batches.append(list(ids))
            found = await get_products(store, ids)
            return [found.get(i) for i in ids]

        self.loader: DataLoader[str, Product | None] = DataLoader(
            load_fn=batch, max_batch_size=MAX_LOOKUP
        )


PLUGIN = SpecPlugin(
    recommenders=[
        list_recommender("listed_a", ["p1", "p2", "p5", "ghost"]),
        list_recommender("listed_b", ["p3", "p1"]),
        list_recommender("for_you", ["p4"], personalized=True),
    ],
    coupons=[
        fixed_coupon("welcome", "WELCOME10"),
        fixed_coupon("loyal", "LOYAL5", personalized=True),
        CouponStrategySpec("coupon_down", RaisingCoupon, "broken"),
    ],
    promotions=[
        percent_off("ten_off", 10, priority=5),
        percent_off("five_off", 5, priority=10),
        PromotionSpec("greedy", GreedyPromotion, "greedy", {"percent": 0, "priority": 20}),
        PromotionSpec("broken_promo", RaisingPromotion, "broken", {"percent": 0, "priority": 30}),
    ],
)
CONFIG: dict[str, Any] = {
    "slots": {
        "HOME": [
            {"name": "picks", "title": "Picks", "strategies": ["listed_a", "listed_b"], "limit": 3},
            {"name": "yours", "strategies": ["for_you", "listed_b"]},
            {"name": "nothing", "strategies": ["not_installed"]},
        ]
    },
    "shipping": {"EUR": 495},
}


@pytest.fixture
async def host(settings: Settings, store: Store) -> AsyncIterator[PluginHost]:
    await upsert_products(
        store,
        [product_doc(f"p{i}") for i in range(1, 5)] + [product_doc("p5", active=False)],
    )
    h = await PluginHost.start(
        dataclasses.replace(settings, strategy_timeout_ms=2000),
        store,
        builtins=(),
        plugins=[("doubles", PLUGIN)],
        discover=False,
        config=config_from_mapping(CONFIG),
    )
    try:
        yield h
    finally:
        await h.close()


async def no_stored_promotions(ctx: RequestContext) -> list[Promotion]:
    return []


def composer(
    host: PluginHost, store: Store, settings: Settings, profiles: CountingProfiles
) -> Storefront:
    sf = Storefront(host, store, settings, profiles)
    # The pricing engine with only the plugins' promotions (none stored) and the shipping
    # fee from the config file, as `start_components` wires it.
    sf.pricer = CartPricer(
        promotions=no_stored_promotions,
        stacking=promotion_stacking,
        shipping_fees={c: Money(a, c) for c, a in sf.shipping.items()},
    )
    return sf


async def test_slots_are_blended_filtered_positioned_and_recorded(
    host: PluginHost, store: Store, settings: Settings
) -> None:
    profiles = CountingProfiles()
    sf = composer(host, store, settings, profiles)
    loader = CountingLoader(store)
    req = StorefrontRequest(
        PageType.HOME, user_id="u1", session_id="s1", cart_lines=(CartLine("p4", 1),)
    )
    result = await sf.compose(req, request_id="req-1", now=NOW, loader=loader.loader)

    assert profiles.loads == ["u1"]  # one profile read per request
    fetched = [pid for batch in loader.batches for pid in batch]
    assert len(fetched) == len(set(fetched))  # each product read once, in batches
    assert len(loader.batches) <= 3

    picks, yours, nothing = result.slots
    # merged by normalised score: p1 = 4/4 + 1/2, p3 = 2/2, p2 = 3/4; p5 inactive, ghost unknown
    assert [(i.position, i.product.id) for i in picks.items] == [(1, "p1"), (2, "p3"), (3, "p2")]
    assert {r.strategy for r in picks.items[0].reasons} == {"listed_a", "listed_b"}
    assert picks.items[0].reasons[0] == Reason("LISTED", "Listed by listed_a", "listed_a")
    assert [i.product.id for i in yours.items] == ["p4", "p3", "p1"]
    assert nothing.items == ()
    assert Degradation("not_installed", "not loaded") in result.degraded
    assert len({s.recommendation_id for s in result.slots}) == 3

    await sf.flush()
    docs = await store.collection(RECOMMENDATIONS).find({}).sort("slot", 1).to_list(None)
    assert [d["_id"] for d in docs] == [picks.recommendation_id, yours.recommendation_id]
    doc = docs[0]
    assert (doc["request_id"], doc["user_id"], doc["session_id"], doc["page"]) == (
        "req-1",
        "u1",
        "s1",
        "HOME",
    )
    assert doc["items"][0] == {
        "product_id": "p1",
        "position": 1,
        "score": 1.5,
        "strategy": "listed_a",
    }
    assert doc["expire_at"] - doc["created_at"] == timedelta(days=settings.recommendation_ttl_days)


async def test_without_consent_personalized_strategies_sit_out(
    host: PluginHost, store: Store, settings: Settings
) -> None:
    profile = Profile(user_id="u2", as_of=NOW, consent_personalization=False)
    sf = composer(host, store, settings, CountingProfiles({"u2": profile}))
    result = await sf.compose(
        StorefrontRequest(PageType.HOME, user_id="u2"), request_id="r", now=NOW
    )
    yours = result.slots[1]
    assert [i.product.id for i in yours.items] == ["p3", "p1"]  # only listed_b
    assert [o.code for o in result.coupons] == ["WELCOME10"]  # the personalized coupon sat out
    assert host.strategy("for_you").obj.calls == 0  # type: ignore[union-attr]


async def test_coupons_come_from_every_strategy_that_answers(
    host: PluginHost, store: Store, settings: Settings
) -> None:
    sf = composer(host, store, settings, CountingProfiles())
    result = await sf.compose(StorefrontRequest(PageType.HOME, session_id="s"), request_id="r")
    assert [(o.code, o.strategy, o.reason.strategy) for o in result.coupons] == [
        ("WELCOME10", "welcome", "welcome"),
        ("LOYAL5", "loyal", "loyal"),
    ]
    assert Degradation("coupon_down", "error: KeyError") in result.degraded


async def test_cart_is_priced_through_the_chain_and_fails_closed(
    host: PluginHost, store: Store, settings: Settings
) -> None:
    sf = composer(host, store, settings, CountingProfiles())
    req = StorefrontRequest(PageType.CART, user_id="u", cart_lines=(CartLine("p1", 2),), slots=())
    result = await sf.compose(req, request_id="r")
    cart = result.cart
    assert cart is not None and result.cart_error is None
    assert cart.subtotal.amount == 2000
    # ten_off first (priority 5): 200; then five_off on what is left: 5% of 1800 = 90
    assert [(a.name, a.amount.amount) for a in cart.applied] == [("ten_off", 200), ("five_off", 90)]
    assert cart.discount_total.amount == 290
    assert cart.shipping.amount == 495 and cart.total.amount == 1710 + 495
    not_applied = {n.name: n.code for n in cart.not_applied}
    assert not_applied == {"greedy": "INVALID", "broken_promo": "UNAVAILABLE"}
    assert Degradation("broken_promo", "error: ZeroDivisionError") in result.degraded
    assert result.slots == ()


async def test_an_unavailable_cart_product_is_reported_on_its_line(
    host: PluginHost, store: Store, settings: Settings
) -> None:
    sf = composer(host, store, settings, CountingProfiles())
    req = StorefrontRequest(
        PageType.CART,
        user_id="u",
        cart_lines=(CartLine("p5", 1), CartLine("p1", 2), CartLine("nope", 1)),
    )
    result = await sf.compose(req, request_id="r")
    assert result.cart is not None and result.cart_error is None
    # The priced line keeps its index in the request (1), not its place among priced lines.
    assert [(line.index, line.product_id, line.quantity) for line in result.cart.lines] == [
        (1, "p1", 2)
    ]
    assert [(e.index, e.product_id, e.code) for e in result.cart_line_errors] == [
        (0, "p5", "PRODUCT_UNAVAILABLE"),
        (2, "nope", "PRODUCT_NOT_FOUND"),
    ]


async def test_a_failing_profile_store_serves_the_page_anonymously(
    host: PluginHost, store: Store, settings: Settings
) -> None:
    sf = composer(host, store, settings, CountingProfiles(fail=True))
    result = await sf.compose(StorefrontRequest(PageType.HOME, user_id="u"), request_id="r")
    assert Degradation("profile", "unavailable") in result.degraded
    assert result.slots[0].items


async def test_slot_overrides(host: PluginHost, store: Store, settings: Settings) -> None:
    sf = composer(host, store, settings, CountingProfiles())
    req = StorefrontRequest(
        PageType.PRODUCT,
        session_id="s",
        product_id="p1",
        slots=(
            SlotOverride("picks", strategy="listed_b", limit=1),
            SlotOverride("new", "listed_a"),
        ),
    )
    result = await sf.compose(req, request_id="r")
    assert [(s.name, s.title) for s in result.slots] == [("picks", "Picks"), ("new", "New")]
    assert [i.product.id for i in result.slots[0].items] == ["p3"]
    assert [i.product.id for i in result.slots[1].items] == ["p1", "p2"]
    with pytest.raises(StorefrontInputError, match="'mystery' is not a configured slot"):
        await sf.compose(dataclasses.replace(req, slots=(SlotOverride("mystery"),)), request_id="r")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"user_id": None, "session_id": None}, "userId or sessionId is required"),
        ({"user_id": "  "}, "userId must not be blank"),
        ({"page": PageType.PRODUCT}, "productId is required on a PRODUCT page"),
        ({"page": PageType.CATEGORY}, "categoryPath is required on a CATEGORY page"),
        ({"currency": "EURO"}, "currency 'EURO' is not an ISO 4217 code"),
        ({"cart_lines": (CartLine("x" * 201, 1),)}, r"cart.lines\[0\].productId is longer"),
        ({"slots": (SlotOverride("a", limit=51),)}, r"slots\[0\].limit must be from 1 to 50"),
        ({"slots": (SlotOverride("a", "x"), SlotOverride("a", "y"))}, "each slot name"),
        ({"cart_lines": (CartLine("p1", 1),) * 101}, "at most 100 lines"),
    ],
)
async def test_invalid_requests_name_the_field(
    host: PluginHost, store: Store, settings: Settings, changes: dict[str, Any], message: str
) -> None:
    sf = composer(host, store, settings, CountingProfiles())
    req = dataclasses.replace(StorefrontRequest(PageType.HOME, user_id="u"), **changes)
    with pytest.raises(StorefrontInputError, match=message):
        await sf.compose(req, request_id="r")


def test_default_slots_cover_every_page() -> None:
    assert set(DEFAULT_SLOTS) == set(PageType)
    home = [(s.name, s.strategies) for s in DEFAULT_SLOTS[PageType.HOME]]
    assert home == [
        ("recommended_for_you", ("recommended_for_you", "trending")),
        ("trending", ("trending",)),
        ("recently_viewed", ("recently_viewed",)),
    ]
    assert slots_from_config({})[PageType.CART][0].name == "complete_your_order"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"HOMEPAGE": []}, "unknown page type"),
        ({"HOME": {"name": "x"}}, "array of tables"),
        ({"HOME": [{"name": "x"}]}, r"slots.HOME\[0\].strategies: required"),
        ({"HOME": [{"name": "x", "strategies": ["a"], "limit": 99}]}, r"\[0\].limit"),
        ({"HOME": [{"name": "x", "strategies": ["a"], "size": 3}]}, "unknown key.*size"),
        ({"HOME": [{"name": "x", "strategies": ["a"], "weights": {"a": -1}}]}, "weights"),
    ],
)
def test_slot_config_errors_name_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        slots_from_config(raw, "shopfront.toml")


def candidate_lists() -> st.SearchStrategy[dict[str, list[Candidate]]]:
    ids = st.sampled_from([f"p{i}" for i in range(10)])
    cand = st.builds(Candidate, ids, st.floats(min_value=0, max_value=100))
    return st.dictionaries(st.sampled_from(["a", "b", "c"]), st.lists(cand, max_size=12))


@given(candidate_lists(), st.integers(min_value=1, max_value=50))
def test_merge_and_rules_keep_only_known_active_products_up_to_the_limit(
    candidates: dict[str, list[Candidate]], limit: int
) -> None:
    slot = Slot("s", "S", ("a", "b", "c"), limit=limit)
    products = {f"p{i}": product(f"p{i}", active=i % 3 != 0) for i in range(8)}
    merged = merge_by_score(slot, candidates)
    scores = [c.score for c in merged]
    assert scores == sorted(scores, reverse=True)
    assert {c.product_id for c in merged} == {c.product_id for v in candidates.values() for c in v}
    items = enforce_rules(merged, products, limit)
    ids = [i.product.id for i in items]
    assert len(ids) == len(set(ids)) <= limit
    assert all(i in products and products[i].active for i in ids)
    assert [i.position for i in items] == list(range(1, len(items) + 1))


async def test_thousands_of_candidates_across_slots_are_read_in_bounded_batches(
    settings: Settings, store: Store
) -> None:
    await upsert_products(store, [product_doc("w0000"), product_doc("w2999")])
    specs = [
        list_recommender(f"wide{k}", [f"w{k * 1000 + i:04d}" for i in range(1000)])
        for k in range(3)
    ]
    host = await PluginHost.start(
        dataclasses.replace(settings, strategy_timeout_ms=5000),
        store,
        builtins=(),
        plugins=[("wide", SpecPlugin(recommenders=specs))],
        discover=False,
        config=config_from_mapping({}),
    )
    try:
        sf = composer(host, store, settings, CountingProfiles())
        loader = CountingLoader(store)
        slots = tuple(SlotOverride(f"s{k}", f"wide{k}") for k in range(3))
        result = await sf.compose(
            StorefrontRequest(PageType.HOME, session_id="s", slots=slots),
            request_id="r",
            loader=loader.loader,
        )
        assert [[i.product.id for i in s.items] for s in result.slots] == [["w0000"], [], ["w2999"]]
        assert max(len(b) for b in loader.batches) <= MAX_LOOKUP
    finally:
        await host.close()
