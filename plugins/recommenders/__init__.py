"""Shopfront's built-in recommenders, on exactly the hooks a merchant plugin uses.

Strategies (one module each, each with its own config; copy one to start your own):

========================  ==========================================================  =====
name                      what it recommends                                          personal
========================  ==========================================================  =====
``trending``              popular now, overall and per category (cold-start fallback)   no
``recently_viewed``       what the shopper looked at, newest first                      yes
``buy_again``             past purchases by repeat frequency and due date               yes
``similar_items``         content neighbours (text, category, brand, tags, attributes)  no
``also_viewed``           item-to-item collaborative filtering                          yes
``bought_together``       products sharing orders                                        yes
``recommended_for_you``   EASE over the shopper's recent history; cold start built in    yes
``session``               neighbours of what this session just viewed or carted          yes
``search``                products matching the SEARCH page's query                     no
``because_you_searched``  matches of the shopper's latest searches                      yes
``new_for_you``           new products whose text matches the shopper's products        yes
========================  ==========================================================  =====

The default blend (`plugins.recommenders.blend`) is this plugin's ``blend_candidates``
implementation, ``trylast`` so a merchant's blend runs first. Its policy comes from the
``blend`` table of this plugin's start-up config (``[plugins.recommenders.blend]``).

Trained strategies keep no per-shopper data in their models (only product-to-product weights
and product lists), so erasing a shopper needs nothing from this plugin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shopfront import Candidate, Product, RecommenderSpec, RequestContext, Slot, hookimpl
from shopfront.plugins.recommenders import (
    also_viewed,
    bought_together,
    buy_again,
    new_for_you,
    recently_viewed,
    recommended_for_you,
    searched,
    session,
    similar_items,
    trending,
)
from shopfront.plugins.recommenders.blend import BlendPolicy, blend, parse_policy

PLUGIN_NAME = "recommenders"

SPECS: tuple[RecommenderSpec, ...] = (
    RecommenderSpec(
        name=trending.NAME,
        factory=trending.create,
        description="Popular now, overall and in the page's category; the cold-start fallback.",
        config_type=trending.TrendingConfig,
        personalized=False,
    ),
    RecommenderSpec(
        name=recently_viewed.NAME,
        factory=recently_viewed.create,
        description="Products the shopper viewed recently, newest first.",
        config_type=recently_viewed.RecentlyViewedConfig,
    ),
    RecommenderSpec(
        name=buy_again.NAME,
        factory=buy_again.create,
        description="Past purchases ranked by the shopper's repeat frequency and due date.",
        config_type=buy_again.BuyAgainConfig,
    ),
    RecommenderSpec(
        name=similar_items.NAME,
        factory=similar_items.create,
        description="Content-based neighbours: text, category, brand, tags and attributes.",
        config_type=similar_items.SimilarItemsConfig,
        personalized=False,
    ),
    RecommenderSpec(
        name=also_viewed.NAME,
        factory=also_viewed.create,
        description="Item-to-item collaborative filtering: shoppers who viewed this also viewed.",
        config_type=also_viewed.AlsoViewedConfig,
    ),
    RecommenderSpec(
        name=bought_together.NAME,
        factory=bought_together.create,
        description="Products often bought in the same order.",
        config_type=bought_together.BoughtTogetherConfig,
    ),
    RecommenderSpec(
        name=recommended_for_you.NAME,
        factory=recommended_for_you.create,
        description="EASE over the shopper's recent history (bounded to the most active "
        "products); stated preferences, then popularity, for new shoppers.",
        config_type=recommended_for_you.RecommendedForYouConfig,
    ),
    RecommenderSpec(
        name=session.NAME,
        factory=session.create,
        description="Neighbours of what this session just viewed or carted.",
        config_type=session.SessionConfig,
    ),
    RecommenderSpec(
        name=searched.SEARCH,
        factory=searched.create_search,
        description="Products matching the SEARCH page's query (content model over product "
        "text, reviews and the queries that led to products).",
        config_type=searched.ContentConfig,
        personalized=False,
    ),
    RecommenderSpec(
        name=searched.BECAUSE_YOU_SEARCHED,
        factory=searched.create_because_you_searched,
        description="Matches of the shopper's latest searches, newest first.",
        config_type=searched.ContentConfig,
    ),
    RecommenderSpec(
        name=new_for_you.NAME,
        factory=new_for_you.create,
        description="Products added recently whose text matches the shopper's products.",
        config_type=new_for_you.NewForYouConfig,
    ),
)

_policy = BlendPolicy()


def current_policy() -> BlendPolicy:
    """The blend policy in force (set by the ``startup`` hook from the plugin's config)."""
    return _policy


@hookimpl
def register_recommenders() -> Sequence[RecommenderSpec]:
    return SPECS


@hookimpl
def startup(config: Mapping[str, Any]) -> None:
    """Read the blend policy from ``[plugins.recommenders.blend]``; a bad value stops start-up
    with a message naming the key."""
    global _policy
    _policy = parse_policy(config.get("blend", {}))


@hookimpl(trylast=True)
def blend_candidates(
    ctx: RequestContext,
    slot: Slot,
    candidates: Mapping[str, Sequence[Candidate]],
    products: Mapping[str, Product],
) -> Sequence[Candidate]:
    return blend(ctx, slot, candidates, products, _policy)
