"""The catalog through GraphQL, with the roles each operation needs."""

from __future__ import annotations

from typing import Any

from shopfront.testing import GraphQLCall

UPSERT = """
mutation($products: [ProductInput!]!) {
  upsertProducts(input: {products: $products}) { index id status reason }
}
"""
LIST = """
query($filter: ProductFilterInput, $first: Int!, $after: String) {
  products(filter: $filter, first: $first, after: $after) {
    nodes { id title price { amount currency } categoryPath brand stock inStock }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def product(pid: str, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": pid,
        "title": f"Product {pid}",
        "price": {"amount": 1999, "currency": "EUR"},
        "categoryPath": ["Shoes", "Running"],
        "brand": "Stride",
        "stock": 5,
    }
    base.update(over)
    return base


async def test_upsert_then_list_with_storefront_key(
    graphql: GraphQLCall, storefront_key: str
) -> None:
    res = await graphql(UPSERT, {"products": [product("p1"), product("p2")]})
    assert [r["status"] for r in res["data"]["upsertProducts"]] == ["CREATED", "CREATED"]
    res = await graphql(UPSERT, {"products": [product("p1", title="Renamed")]})
    assert res["data"]["upsertProducts"][0]["status"] == "UPDATED"
    res = await graphql(LIST, {"first": 5}, key=storefront_key)
    nodes = res["data"]["products"]["nodes"]
    assert [n["id"] for n in nodes] == ["p1", "p2"]
    assert nodes[0]["title"] == "Renamed"
    assert nodes[0]["price"] == {"amount": 1999, "currency": "EUR"}


async def test_invalid_items_rejected_valid_kept(graphql: GraphQLCall) -> None:
    batch = [
        product("ok"),
        product("neg", price={"amount": -5, "currency": "EUR"}),
        product("cur", price={"amount": 5, "currency": "EUX"}),
        product("  "),
        product("ok"),
    ]
    res = await graphql(UPSERT, {"products": batch})
    out = res["data"]["upsertProducts"]
    assert [r["status"] for r in out] == ["CREATED", "REJECTED", "REJECTED", "REJECTED", "REJECTED"]
    assert "price.amount" in out[1]["reason"] and "negative" in out[1]["reason"]
    assert "price.currency" in out[2]["reason"] and "ISO 4217" in out[2]["reason"]
    assert out[3]["reason"].startswith("id:")
    assert "twice" in out[4]["reason"]
    listed = await graphql(LIST, {"first": 10})
    assert [n["id"] for n in listed["data"]["products"]["nodes"]] == ["ok"]


async def test_rejected_update_leaves_stored_product_intact(graphql: GraphQLCall) -> None:
    await graphql(UPSERT, {"products": [product("p1", title="Original")]})
    res = await graphql(UPSERT, {"products": [product("p1", title="")]})
    assert res["data"]["upsertProducts"][0]["status"] == "REJECTED"
    listed = await graphql(LIST, {"first": 1})
    assert listed["data"]["products"]["nodes"][0]["title"] == "Original"


async def test_storefront_key_cannot_upsert(graphql: GraphQLCall, storefront_key: str) -> None:
    res = await graphql(UPSERT, {"products": [product("p1")]}, key=storefront_key)
    assert res["data"] is None
    assert res["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    listed = await graphql(LIST, {"first": 5})
    assert listed["data"]["products"]["nodes"] == []


async def test_missing_and_unknown_keys_are_unauthenticated(graphql: GraphQLCall) -> None:
    for key in (None, "sf_merchant_nope"):
        res = await graphql(LIST, {"first": 5}, key=key)
        assert res["data"] is None
        assert res["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_pagination_and_filters(graphql: GraphQLCall) -> None:
    items = [
        product(
            f"p{i:02d}",
            brand="A" if i % 2 else "B",
            price={"amount": 100 * i, "currency": "EUR"},
            stock=i % 3,
            categoryPath=["Shoes", "Trail" if i < 5 else "Road"],
        )
        for i in range(1, 11)
    ]
    await graphql(UPSERT, {"products": items})
    seen: list[str] = []
    after = None
    while True:
        res = await graphql(LIST, {"first": 3, "after": after})
        page = res["data"]["products"]
        seen += [n["id"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [f"p{i:02d}" for i in range(1, 11)]
    flt = {
        "brands": ["A"],
        "minPrice": 300,
        "maxPrice": 900,
        "currency": "EUR",
        "inStock": True,
        "categoryPath": ["Shoes", "Road"],
    }
    res = await graphql(LIST, {"first": 10, "filter": flt})
    ids = [n["id"] for n in res["data"]["products"]["nodes"]]
    assert ids == ["p05", "p07"]  # odd (A), 300..900, stock = i % 3 > 0, Road (i >= 5)


async def test_first_is_capped_and_bad_cursor_is_explained(graphql: GraphQLCall) -> None:
    res = await graphql(LIST, {"first": 101})
    assert res["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "first" in res["errors"][0]["message"]
    res = await graphql(LIST, {"first": 5, "after": "garbage!!"})
    assert "cursor" in res["errors"][0]["message"]
