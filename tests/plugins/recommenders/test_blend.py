"""The default blend: combining, exclusions, diversity, merchant rules, consent, failures."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
import shopfront.plugins.recommenders as builtin
from hypothesis import given, settings
from hypothesis import strategies as st
from shopfront.catalog.products import Product
from shopfront.plugins.recommenders.blend import BlendPolicy, Pin, Rule, blend, parse_policy
from shopfront.recommend.contract import Candidate, Reason, SlotFilter
from shopfront.shoppers.profile_view import Profile, Purchase, StatedPreferences

from tests.plugins.recommenders.kit import NOW, ids, product, request, slot

CATALOG = {
    p.id: p
    for p in [
        product("a", "Alpha", category=("Shoes", "Running"), brand="Swift", tags=("sale",)),
        product("b", "Beta", category=("Shoes", "Running"), brand="Swift"),
        product("c", "Gamma", category=("Shoes", "Hiking"), brand="Peak", price=12000),
        product("d", "Delta", category=("Grocery", "Coffee"), brand="Bean"),
        product("e", "Epsilon", category=("Apparel",), brand="Knit", stock=0),
        product("f", "Phi", category=("Apparel",), brand="Knit", active=False),
        product("g", "Gimel", category=("Apparel",), brand="Knit"),
    ]
}
NO_CAPS = BlendPolicy(max_per_category=0, max_per_brand=0)


def cands(*pairs: tuple[str, float], text: str = "why") -> list[Candidate]:
    return [Candidate(pid, score, (Reason("X", f"{text} {pid}"),)) for pid, score in pairs]


def test_weights_combine_normalised_scores_and_keep_every_reason() -> None:
    candidates = {
        "trending": cands(("a", 100.0), ("b", 50.0), text="popular"),
        "recommended_for_you": cands(("b", 0.2), ("c", 0.1), text="because"),
    }
    s = slot("trending", "recommended_for_you", weights={"recommended_for_you": 2.0})
    out = blend(request(list(CATALOG.values())), s, candidates, CATALOG, NO_CAPS)
    # b: 0.5 + 2 * 1.0 = 2.5; c: 2 * 0.5 = 1.0; a: 1.0 (tie with c, by id)
    assert ids(out) == ["b", "a", "c"]
    assert out[0].score == pytest.approx(2.5)
    assert [(r.text, r.strategy) for r in out[0].reasons] == [
        ("because b", "recommended_for_you"),
        ("popular b", "trending"),
    ]


def test_survives_a_strategy_that_failed() -> None:
    # The slot asks for three strategies; the host left out the one that failed.
    s = slot("trending", "recommended_for_you", "similar_items")
    out = blend(
        request(list(CATALOG.values())), s, {"trending": cands(("a", 1.0))}, CATALOG, NO_CAPS
    )
    assert ids(out) == ["a"]
    assert blend(request(list(CATALOG.values())), s, {}, CATALOG, NO_CAPS) == []


def test_exclusions() -> None:
    profile = Profile(
        "me",
        NOW,
        not_interested=frozenset({"b"}),
        purchases={
            "c": Purchase(1, NOW - timedelta(days=3)),  # recently bought, not repeatable
            "d": Purchase(4, NOW - timedelta(days=3)),  # recently bought, repeatable category
            "g": Purchase(1, NOW - timedelta(days=90)),  # long ago
        },
    )
    policy = BlendPolicy(max_per_category=0, max_per_brand=0, repeatable_categories=("Grocery",))
    everything = cands(*[(pid, 1.0) for pid in CATALOG], ("unknown", 1.0))
    ctx = request(list(CATALOG.values()), profile=profile, cart=["a"])
    out = blend(ctx, slot("x"), {"x": everything}, CATALOG, policy)
    # a: in the cart; b: not interested; c: just bought; e: out of stock; f: inactive
    assert sorted(ids(out)) == ["d", "g"]


def test_slot_filters_category_and_price() -> None:
    everything = cands(*[(pid, 1.0) for pid in CATALOG])
    ctx = request(list(CATALOG.values()))
    shoes = slot("x", filters=SlotFilter(category_path=("Shoes",)))
    assert sorted(ids(blend(ctx, shoes, {"x": everything}, CATALOG, NO_CAPS))) == ["a", "b", "c"]
    cheap = slot("x", filters=SlotFilter(category_path=("Shoes",), max_price=10000))
    assert sorted(ids(blend(ctx, cheap, {"x": everything}, CATALOG, NO_CAPS))) == ["a", "b"]


def test_merchant_rules_boost_and_bury_and_pins() -> None:
    candidates = {"x": cands(("b", 1.0), ("c", 0.9), ("a", 0.5), ("d", 0.4))}
    policy = BlendPolicy(
        max_per_category=0,
        max_per_brand=0,
        rules=(Rule(3.0, tag="sale"), Rule(0.1, brand="Peak")),
        pins=(Pin("test", "g", 2), Pin("other", "d", 1)),
    )
    out = blend(request(list(CATALOG.values())), slot("x"), candidates, CATALOG, policy)
    assert ids(out) == ["a", "g", "b", "d", "c"]
    assert out[1].reasons[0].code == "PINNED"
    assert [c.score for c in out] == sorted((c.score for c in out), reverse=True)


def test_without_consent_only_non_personalized_strategies_and_no_profile_data() -> None:
    profile = Profile(
        "me",
        NOW,
        consent_personalization=False,
        not_interested=frozenset({"a"}),
        purchases={"b": Purchase(1, NOW)},
    )
    candidates = {
        "trending": cands(("a", 1.0), ("b", 0.9)),
        "recommended_for_you": cands(("c", 5.0)),
        "merchant_popular": cands(("d", 1.0)),
    }
    ctx = request(list(CATALOG.values()), profile=profile)
    out = blend(ctx, slot("trending", "recommended_for_you"), candidates, CATALOG, NO_CAPS)
    assert ids(out) == ["a", "b"]  # the profile's "not interested" and purchases are not read
    allowed = BlendPolicy(
        max_per_category=0, max_per_brand=0, non_personalized=("merchant_popular",)
    )
    assert "d" in ids(blend(ctx, slot("x"), candidates, CATALOG, allowed))


def test_repeat_purchase_can_lead_with_the_buy_again_weight() -> None:
    grocery = {
        p.id: p
        for p in [
            product("milk", category=("Grocery", "Dairy"), brand="Farm"),
            product("bread", category=("Grocery", "Bakery"), brand="Bake"),
            product("jam", category=("Grocery", "Spreads"), brand="Fruit"),
        ]
    }
    profile = Profile("me", NOW, purchases={"milk": Purchase(9, NOW - timedelta(days=6))})
    candidates = {
        "buy_again": cands(("milk", 2.3)),
        "trending": cands(("bread", 90.0), ("jam", 80.0)),
    }
    ctx = request(list(grocery.values()), profile=profile)
    policy = BlendPolicy(repeatable_categories=("Grocery",))
    equal = blend(ctx, slot("buy_again", "trending"), candidates, grocery, policy)
    assert ids(equal)[0] == "bread"  # tie at 1.0, broken by id
    leading = slot("buy_again", "trending", weights={"buy_again": 3.0})
    assert ids(blend(ctx, leading, candidates, grocery, policy)) == ["milk", "bread", "jam"]
    not_repeatable = blend(ctx, leading, candidates, grocery, BlendPolicy())
    assert "milk" not in ids(not_repeatable)


def test_slot_params_override_the_policy() -> None:
    candidates = {"x": cands(("a", 1.0), ("b", 0.9), ("c", 0.8))}
    capped = slot("x", limit=2, params={"max_per_brand": 1})
    assert ids(blend(request(list(CATALOG.values())), capped, candidates, CATALOG, NO_CAPS)) == [
        "a",
        "c",
    ]
    learned = slot("x", params={"repeatable_categories": ["*"]})
    profile = Profile("me", NOW, purchases={"a": Purchase(1, NOW - timedelta(days=2))})
    ctx = request(list(CATALOG.values()), profile=profile)
    assert "a" not in ids(blend(ctx, slot("x"), candidates, CATALOG, NO_CAPS))
    assert ids(blend(ctx, learned, candidates, CATALOG, NO_CAPS))[0] == "a"


def test_caps_shape_a_slot_but_never_shrink_it() -> None:
    # One category, one brand, caps of 1: a slot of 3 still shows 3 products, best first.
    shop = {
        p.id: p
        for p in [product(pid, category=("Grocery",), brand="Farm") for pid in "wxyz"]
        + [product("v", category=("Bakery",), brand="Bake")]
    }
    candidates = {"x": cands(("w", 1.0), ("x", 0.9), ("y", 0.8), ("v", 0.1))}
    capped = BlendPolicy(max_per_category=1, max_per_brand=1)
    out = blend(request(list(shop.values())), slot("x", limit=3), candidates, shop, capped)
    assert ids(out) == ["w", "x", "v"]  # diversity first (v), then the best capped-out one
    everything = blend(request(list(shop.values())), slot("x", limit=10), candidates, shop, capped)
    assert ids(everything) == ["w", "x", "y", "v"]


def test_tastes_rank_and_explain_for_a_shopper_with_history() -> None:
    shop = {
        p.id: p
        for p in [
            product("n1", "Trail One", category=("Shoes", "Trail"), brand="Northpace"),
            product("o1", "Road One", category=("Shoes", "Road"), brand="Other"),
            product(
                "o2",
                "Road Two",
                category=("Shoes", "Road"),
                brand="Other",
                attributes={"size": "44"},
            ),
        ]
    }
    candidates = {"trending": cands(("o1", 1.0), ("n1", 0.9), ("o2", 0.8))}
    anonymous = blend(request(list(shop.values())), slot("trending"), candidates, shop, NO_CAPS)
    assert ids(anonymous) == ["o1", "n1", "o2"]
    fan = Profile(
        "me",
        NOW,
        brand_affinities=(("Northpace", 5.0), ("Other", 0.5)),
        category_affinities=(("Shoes", 6.0), ("Shoes > Trail", 5.0), ("Shoes > Road", 0.5)),
        preferences=StatedPreferences(sizes=("44",)),
    )
    out = blend(
        request(list(shop.values()), profile=fan), slot("trending"), candidates, shop, NO_CAPS
    )
    assert ids(out) == ["o2", "n1", "o1"]
    texts = {c.product_id: [r.text for r in c.reasons] for c in out}
    assert "Because you like Northpace" in texts["n1"]
    assert "In your size (44)" in texts["o2"]
    assert not any("like" in t for t in texts["o1"])
    withheld = Profile(
        "me", NOW, consent_personalization=False, brand_affinities=fan.brand_affinities
    )
    assert ids(
        blend(
            request(list(shop.values()), profile=withheld),
            slot("trending"),
            candidates,
            shop,
            NO_CAPS,
        )
    ) == ["o1", "n1", "o2"]


def test_low_ratings_exclude_and_rated_products_count_as_owned() -> None:
    candidates = {"x": cands(("a", 1.0), ("b", 0.9), ("c", 0.8))}
    profile = Profile("me", NOW, ratings={"a": 1, "b": 5})
    ctx = request(list(CATALOG.values()), profile=profile)
    assert ids(blend(ctx, slot("x"), candidates, CATALOG, NO_CAPS)) == ["c"]
    repeat = slot("x", params={"repeatable_categories": ["Shoes"]})
    assert ids(blend(ctx, repeat, candidates, CATALOG, NO_CAPS)) == ["b", "c"]


def test_hook_implementation_uses_the_configured_policy() -> None:
    builtin.startup({"blend": {"max_per_brand": 1}})
    try:
        out = builtin.blend_candidates(
            ctx=request(list(CATALOG.values())),
            slot=slot("x", limit=2),
            candidates={"x": cands(("a", 1.0), ("b", 0.9), ("c", 0.8))},
            products=CATALOG,
        )
        assert ids(out) == ["a", "c"]
    finally:
        builtin.startup({})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"max_per_brand": -1}, "blend.max_per_brand"),
        ({"colour": 1}, "unknown key"),
        ({"rules": [{"action": "boost", "factor": 0.5, "tag": "x"}]}, r"rules\[0\].factor"),
        ({"rules": [{"action": "lift", "tag": "x"}]}, r"rules\[0\].action"),
        ({"rules": [{"action": "bury"}]}, "name a tag, brand or category"),
        ({"pins": [{"slot": "s", "product_id": "p", "position": 0}]}, r"pins\[0\].position"),
        ({"repeatable_categories": "Grocery"}, "repeatable_categories"),
    ],
)
def test_bad_policy_config_names_the_key(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_policy(config)


# -- properties ----------------------------------------------------------------------------

products_st = st.lists(
    st.builds(
        lambda i, cat, brand, stock, active, price: product(
            f"p{i}", category=cat, brand=brand, stock=stock, active=active, price=price
        ),
        st.integers(0, 30),
        st.sampled_from([("A",), ("A", "x"), ("A", "y"), ("B",), ("B", "z"), ()]),
        st.sampled_from(["", "k", "l", "m"]),
        st.integers(0, 3),
        st.booleans(),
        st.integers(0, 20000),
    ),
    min_size=1,
    max_size=30,
    unique_by=lambda p: p.id,
)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[Product], dict[str, list[Candidate]], Profile]:
    catalog = draw(products_st)
    pids = [p.id for p in catalog] + ["ghost"]
    candidates = {
        name: [
            Candidate(pid, draw(st.floats(-5, 5, allow_nan=False)))
            for pid in draw(st.lists(st.sampled_from(pids), unique=True, max_size=20))
        ]
        for name in draw(st.lists(st.sampled_from(["s1", "s2", "trending"]), unique=True))
    }
    chosen = st.sets(st.sampled_from(pids), max_size=5)
    profile = Profile(
        "me",
        NOW,
        not_interested=frozenset(draw(chosen)),
        purchases={
            pid: Purchase(1, NOW - timedelta(days=draw(st.integers(0, 60)))) for pid in draw(chosen)
        },
    )
    return catalog, candidates, profile


@settings(max_examples=150, deadline=None)
@given(
    scenario(),
    st.sets(st.sampled_from([f"p{i}" for i in range(31)]), max_size=4),
    st.integers(1, 12),
    st.integers(0, 3),
    st.integers(0, 3),
)
def test_property_exclusions_and_diversity_hold(
    world: tuple[list[Product], dict[str, list[Candidate]], Profile],
    cart: set[str],
    limit: int,
    per_category: int,
    per_brand: int,
) -> None:
    catalog, candidates, profile = world
    by_id = {p.id: p for p in catalog}
    policy = BlendPolicy(
        max_per_category=per_category,
        max_per_brand=per_brand,
        category_depth=2,
        repeatable_categories=("B",),
    )
    ctx = request(catalog, profile=profile, cart=sorted(cart & set(by_id)), product_id=None)
    out = blend(ctx, slot("s1", "s2", "trending", limit=limit), candidates, by_id, policy)

    assert len(out) <= limit
    assert len(set(ids(out))) == len(out)
    assert [c.score for c in out] == sorted((c.score for c in out), reverse=True)
    proposed = {c.product_id for cs in candidates.values() for c in cs}
    for c in out:
        p = by_id[c.product_id]
        assert c.product_id in proposed
        assert p.active and p.stock > 0
        assert c.product_id not in cart
        assert c.product_id not in profile.not_interested
        bought = profile.purchases.get(c.product_id)
        if bought and NOW - bought.last_at < timedelta(days=30):
            assert p.category_path[:1] == ("B",)  # only repeatable categories come back
        assert c.reasons
    categories = [by_id[c.product_id].category_path[:2] for c in out]
    brands = [by_id[c.product_id].brand for c in out]
    # Caps shape the slot but never shrink it: it holds as many products as it would with
    # no caps at all, and it breaks a cap only when the capped picks could not fill it.
    uncapped = dataclasses.replace(policy, max_per_category=0, max_per_brand=0)
    eligible = blend(ctx, slot("s1", "s2", "trending", limit=limit), candidates, by_id, uncapped)
    assert len(out) == len(eligible)
    over_cap = (
        per_category and any(categories.count(k) > per_category for k in categories if k)
    ) or (per_brand and any(brands.count(b) > per_brand for b in brands if b))
    if over_cap:
        assert len(out) == limit or len(out) == len(proposed & set(ids(eligible)))


@settings(max_examples=100, deadline=None)
@given(scenario())
def test_property_without_consent_the_profile_changes_nothing(
    world: tuple[list[Product], dict[str, list[Candidate]], Profile],
) -> None:
    catalog, candidates, profile = world
    by_id = {p.id: p for p in catalog}
    withheld = Profile(
        "me",
        NOW,
        consent_personalization=False,
        not_interested=profile.not_interested,
        purchases=profile.purchases,
    )
    empty = Profile("me", NOW, consent_personalization=False)
    s = slot("s1", "s2", "trending")
    with_data = blend(request(catalog, profile=withheld), s, candidates, by_id, BlendPolicy())
    without = blend(request(catalog, profile=empty), s, candidates, by_id, BlendPolicy())
    assert with_data == without
    assert {r.strategy for c in with_data for r in c.reasons} <= {"trending"}
