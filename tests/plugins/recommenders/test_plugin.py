"""The built-in recommenders plugin registers through pluggy like any merchant plugin."""

from __future__ import annotations

import pluggy
import shopfront.plugins.recommenders as builtin
from shopfront.extend import hookspecs
from shopfront.recommend.contract import Recommender, RecommenderSpec, Trainable

from tests.plugins.recommenders.kit import setup


def manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(builtin, name=builtin.PLUGIN_NAME)
    pm.check_pending()  # every implementation matches a specification
    return pm


def test_registers_the_strategy_names_the_storefront_uses() -> None:
    specs = [s for result in manager().hook.register_recommenders() for s in result]
    assert all(isinstance(s, RecommenderSpec) for s in specs)
    assert {s.name for s in specs} == {
        "trending",
        "recently_viewed",
        "buy_again",
        "similar_items",
        "also_viewed",
        "bought_together",
        "recommended_for_you",
        "session",
        "search",
        "because_you_searched",
        "new_for_you",
    }
    assert {s.name for s in specs if not s.personalized} == {"trending", "similar_items", "search"}
    for spec in specs:
        strategy = spec.factory(setup(spec.name, spec.default_config))
        assert isinstance(strategy, Recommender)
        assert spec.name == "recently_viewed" or isinstance(strategy, Trainable)
        assert spec.description


def test_the_default_blend_is_trylast_so_a_merchant_blend_wins() -> None:
    pm = manager()

    class MerchantBlend:
        @hookspecs.hookimpl
        def blend_candidates(self, ctx, slot, candidates, products):  # type: ignore[no-untyped-def]
            return ["merchant"]

    pm.register(MerchantBlend(), name="merchant")
    impls = pm.hook.blend_candidates.get_hookimpls()
    assert impls[0].plugin_name == builtin.PLUGIN_NAME and impls[0].opts["trylast"]
    assert pm.hook.blend_candidates(ctx=None, slot=None, candidates={}, products={}) == ["merchant"]
