"""Merchants list model versions and roll back through GraphQL."""

from __future__ import annotations

from datetime import timedelta

from shopfront.catalog.products import upsert_products
from shopfront.platform.config import Settings
from shopfront.platform.store import Store
from shopfront.plugins.recommenders import trending
from shopfront.recommend import models
from shopfront.recommend.models import ModelRegistry
from shopfront.recommend.training import train
from shopfront.runtime import Runtime
from shopfront.testing import GraphQLCall

from tests.plugins.recommenders.kit import NOW, event, product, setup

LIST = """
query { models(first: 10) { nodes {
  version status trainedAt activatedAt windowStart windowEnd sizes metrics loaded
  artifacts { strategy bytes fitSeconds }
} } }
"""
ACTIVATE = "mutation($v: String!) { activateModel(input: {version: $v}) { version status loaded } }"


async def two_versions(store: Store, settings: Settings) -> tuple[str, str]:
    await upsert_products(store, [product("a").to_doc(), product("b").to_doc()])
    await store.collection("events").insert_many(
        [event("purchase", f"u{i}", "a") for i in range(3)]
    )
    names = []
    for k in range(2):
        result = await train(
            store,
            settings,
            {"trending": trending.create(setup("trending"))},
            now=NOW + timedelta(minutes=k),
        )
        names.append(result.version.version)
    return names[0], names[1]


async def test_models_lists_versions_and_activate_rolls_back(
    graphql: GraphQLCall, store: Store, settings: Settings, app: object
) -> None:
    old, new = await two_versions(store, settings)
    runtime: Runtime = app.state.runtime  # type: ignore[attr-defined]
    registry = ModelRegistry(store, settings)
    registry.attach("trending", trending.create(setup("trending")))
    await registry.refresh()
    runtime.models = registry

    listed = (await graphql(LIST))["data"]["models"]["nodes"]
    assert [v["version"] for v in listed] == [new, old]
    assert [v["status"] for v in listed] == ["ACTIVE", "INACTIVE"]
    assert listed[0]["loaded"] is True and listed[0]["sizes"]["events"] == 3
    assert listed[0]["artifacts"][0]["strategy"] == "trending"

    rolled = (await graphql(ACTIVATE, {"v": old}))["data"]["activateModel"]
    assert rolled == {"version": old, "status": "ACTIVE", "loaded": True}
    assert (await models.active_version(store)).version == old  # type: ignore[union-attr]


async def test_activate_unknown_version_and_storefront_key_are_refused(
    graphql: GraphQLCall, storefront_key: str
) -> None:
    missing = await graphql(ACTIVATE, {"v": "20200101T000000Z-000000"})
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert "no model version" in missing["errors"][0]["message"]
    refused = await graphql(LIST, key=storefront_key)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
