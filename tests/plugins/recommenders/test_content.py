"""The content model and its strategies: search, because_you_searched, new_for_you."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from shopfront.plugins.recommenders import new_for_you, searched
from shopfront.plugins.recommenders.content import ContentModel
from shopfront.recommend.models import decode, encode
from shopfront.shoppers.context import PageType
from shopfront.shoppers.profile_view import Profile

from tests.plugins.recommenders.kit import NOW, event, ids, product, request, setup, slot, training

OLD = NOW - timedelta(days=400)
CATALOG = [
    product("trail1", "Northpace Trail Runner", brand="Northpace", description="grippy lugs",
            category=("Shoes", "Trail"), created_at=OLD),
    product("trail2", "Ridge Trail Shoe", brand="Ridge", category=("Shoes", "Trail"),
            created_at=OLD),
    product("road1", "City Road Runner", brand="Swift", category=("Shoes", "Road"),
            created_at=OLD),
    product("tent1", "Summit Tent", brand="Peak", description="two person dome",
            category=("Outdoor", "Tents"), created_at=OLD),
    product("mug1", "Enamel Mug", brand="Peak", category=("Outdoor", "Kitchen"),
            created_at=OLD),
]  # fmt: skip
EVENTS = [
    # Reviews teach words the catalog text lacks; a search followed by a view teaches that
    # "waterproof" leads to the tent.
    event("review", "u1", "mug1", review="keeps coffee hot on camping trips", rating=5),
    event("search", "u2", None, query="waterproof shelter", days_ago=2),
    event("view", "u2", "tent1", days_ago=2 - 1 / 24 / 60),
]


async def fitted(module, name, products=CATALOG, events=EVENTS):  # type: ignore[no-untyped-def]
    strategy = getattr(module, "create", None) or module
    built = strategy(setup(name))
    await built.fit(training(products, events))
    return built


def test_model_finds_products_by_their_text_reviews_and_the_queries_that_led_to_them() -> None:
    data = training(CATALOG, EVENTS)
    model = ContentModel.fit(data.products, data.interactions)
    assert {pid for pid, _ in model.search("trail shoes", 2)} == {"trail1", "trail2"}
    assert model.search("camping coffee", 3)[0][0] == "mug1"  # from its review
    assert model.search("waterproof", 3)[0][0] == "tent1"  # from the search that led to it
    assert model.search("zzz unknown words", 3) == []
    back = ContentModel.from_arrays(decode(encode(model.to_arrays())))
    assert back.search("camping coffee", 3) == model.search("camping coffee", 3)


def test_new_products_are_searchable_and_have_neighbours_without_training() -> None:
    data = training(CATALOG, EVENTS)
    model = ContentModel.fit(data.products, data.interactions)
    new = product("trail3", "Northpace Trail Racer", brand="Northpace",
                  category=("Shoes", "Trail"), created_at=NOW)  # fmt: skip
    grown = model.add_products([new])
    assert "trail3" not in model and "trail3" in grown
    assert grown.similar("trail3", 1)[0][0] == "trail1"
    assert "trail3" in [pid for pid, _ in grown.search("northpace trail", 3)]
    assert grown.search("racer", 3) == []  # a word new to the vocabulary waits for training
    renamed = grown.add_products([dataclasses.replace(new, title="Enamel Racer Mug")])
    assert len(renamed.product_ids) == len(grown.product_ids)  # replaced, not duplicated
    assert renamed.similar("trail3", 1)[0][0] == "mug1"


def test_postings_are_bounded_per_word() -> None:
    many = [product(f"p{i}", f"Trail shoe {i}", created_at=OLD) for i in range(60)]
    model = ContentModel.fit(many, None, max_postings=10)
    column_sizes = model.postings.getnnz(axis=0)
    assert column_sizes.max() <= 10
    assert len(model.search("trail", 50)) <= 10


async def test_search_serves_the_search_page_query() -> None:
    strategy = await fitted(searched.create_search, "search")
    ctx = dataclasses.replace(request(CATALOG, page=PageType.SEARCH), search_query="trail")
    found = await strategy.recommend(ctx, slot("search"))
    assert set(ids(found)) == {"trail1", "trail2"}
    assert found[0].reasons[0].text == "Matches 'trail'"
    assert await strategy.recommend(request(CATALOG), slot("search")) == []


async def test_because_you_searched_names_the_search_and_needs_consent() -> None:
    strategy = await fitted(searched.create_because_you_searched, "because_you_searched")
    profile = Profile("me", NOW, recent_searches=("tent", "trail runner"))
    found = await strategy.recommend(request(CATALOG, profile=profile), slot("x"))
    assert ids(found)[0] == "tent1"  # the newest search counts most
    texts = {c.product_id: c.reasons[0].text for c in found}
    assert texts["tent1"] == "Because you searched 'tent'"
    assert texts["trail1"] == "Because you searched 'trail runner'"
    withheld = Profile("me", NOW, consent_personalization=False, recent_searches=("tent",))
    assert await strategy.recommend(request(CATALOG, profile=withheld), slot("x")) == []


async def test_new_for_you_matches_new_products_to_the_shoppers_taste() -> None:
    strategy = await fitted(new_for_you, "new_for_you")
    profile = Profile("me", NOW, recently_viewed=("trail1",))
    assert await strategy.recommend(request(CATALOG, profile=profile), slot("x")) == []  # none new
    strategy.add_products(
        [
            product("trail3", "Northpace Trail Racer", brand="Northpace",
                    category=("Shoes", "Trail"), created_at=NOW - timedelta(days=2)),
            product("tent2", "Storm Tent", brand="Peak", category=("Outdoor", "Tents"),
                    created_at=NOW - timedelta(days=1)),
            product("old9", "Trail Runner Classic", created_at=NOW - timedelta(days=90)),
        ]
    )  # fmt: skip
    found = await strategy.recommend(request(CATALOG, profile=profile), slot("x"))
    assert ids(found) == ["trail3"]  # new and like trail1; the tent is new but not their taste
    assert found[0].reasons[0].text == "New, and like Northpace Trail Runner"
