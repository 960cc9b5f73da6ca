"""Every growing list pages the same way: ``first``/``after`` in, ``nodes``, ``edges { cursor
node }`` and ``pageInfo`` out; paging to the end visits every item once, in the list's order,
and resuming from any edge's cursor continues right after that item."""

from __future__ import annotations

from typing import Any

from shopfront.platform.config import Settings
from shopfront.platform.store import Store
from shopfront.testing import GraphQLCall

from tests.schema.test_models_api import two_versions

PAGE = """
query($first: Int!, $after: String) {
  %s(first: $first, after: $after) {
    nodes { %s }
    edges { cursor node { %s } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def page_through(
    graphql: GraphQLCall, field: str, key: str, first: int = 2
) -> tuple[list[str], list[str]]:
    """All keys of the list in order, and every edge cursor seen."""
    query = PAGE % (field, key, key)
    keys: list[str] = []
    cursors: list[str] = []
    after = None
    for _ in range(20):
        res = await graphql(query, {"first": first, "after": after})
        assert "errors" not in res, res
        page = res["data"][field]
        assert [e["node"] for e in page["edges"]] == page["nodes"]
        assert len(page["nodes"]) <= first
        keys += [n[key] for n in page["nodes"]]
        cursors += [e["cursor"] for e in page["edges"]]
        if page["edges"]:
            assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            return keys, cursors
        after = page["pageInfo"]["endCursor"]
    raise AssertionError(f"{field} did not end")


async def resumes_after_each_cursor(
    graphql: GraphQLCall, field: str, key: str, keys: list[str], cursors: list[str]
) -> None:
    query = PAGE % (field, key, key)
    for i, cursor in enumerate(cursors):
        res = await graphql(query, {"first": 100, "after": cursor})
        assert [n[key] for n in res["data"][field]["nodes"]] == keys[i + 1 :]


def eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


async def test_promotions_and_campaigns_page_in_id_order(graphql: GraphQLCall) -> None:
    ids = ["p3", "p1", "p5", "p2", "p4"]
    for pid in ids:
        res = await graphql(
            "mutation($input: PromotionInput!) { upsertPromotion(input: $input) { id } }",
            {
                "input": {
                    "id": pid,
                    "title": pid,
                    "rule": {"orderDiscount": {"discount": {"percent": "5"}}},
                }
            },
        )
        assert "errors" not in res, res
        res = await graphql(
            "mutation($input: CouponCampaignInput!) { createCouponCampaign(input: $input) { id } }",
            {
                "input": {
                    "id": f"c-{pid}",
                    "title": pid,
                    "currency": "EUR",
                    "discount": {"kind": "FIXED", "amount": eur(100)},
                }
            },
        )
        assert "errors" not in res, res
    keys, cursors = await page_through(graphql, "promotions", "id")
    assert keys == sorted(ids)
    await resumes_after_each_cursor(graphql, "promotions", "id", keys, cursors)
    keys, campaign_cursors = await page_through(graphql, "couponCampaigns", "id")
    assert keys == [f"c-{p}" for p in sorted(ids)]
    await resumes_after_each_cursor(graphql, "couponCampaigns", "id", keys, campaign_cursors)

    # a cursor belongs to its list; anything else is a clear input error
    for bad in (campaign_cursors[0], "not-a-cursor"):
        res = await graphql(PAGE % ("promotions", "id", "id"), {"first": 2, "after": bad})
        assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "after" in res["errors"][0]["message"]
    res = await graphql(PAGE % ("promotions", "id", "id"), {"first": 0, "after": None})
    assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_experiments_page_newest_first(graphql: GraphQLCall) -> None:
    names = [f"exp-{i}" for i in range(5)]
    for name in names:
        res = await graphql(
            "mutation($input: CreateExperimentInput!) { createExperiment(input: $input) { id } }",
            {
                "input": {
                    "name": name,
                    "traffic": 0.5,
                    "variants": [
                        {"name": "control", "weight": 1, "control": True},
                        {"name": "holdout", "weight": 1, "personalization": False},
                    ],
                }
            },
        )
        assert "errors" not in res, res
    keys, cursors = await page_through(graphql, "experiments", "name")
    assert sorted(keys) == names and len(set(keys)) == 5
    await resumes_after_each_cursor(graphql, "experiments", "name", keys, cursors)


async def test_models_page_newest_first(
    graphql: GraphQLCall, store: Store, settings: Settings
) -> None:
    old, new = await two_versions(store, settings)
    keys, cursors = await page_through(graphql, "models", "version", first=1)
    assert keys == [new, old]
    await resumes_after_each_cursor(graphql, "models", "version", keys, cursors)


async def test_products_edges_resume_like_the_end_cursor(graphql: GraphQLCall) -> None:
    products = [{"id": f"sku-{i}", "title": f"P{i}", "price": eur(100 * i)} for i in range(1, 6)]
    res = await graphql(
        "mutation($p: [ProductInput!]!) { upsertProducts(input: {products: $p}) { status } }",
        {"p": products},
    )
    assert "errors" not in res, res
    keys, cursors = await page_through(graphql, "products", "id")
    assert keys == [p["id"] for p in products]
    await resumes_after_each_cursor(graphql, "products", "id", keys, cursors)
