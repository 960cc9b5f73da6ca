"""Injection safety: operator-laden JSON at every client input that reaches MongoDB today.

Paths covered: the ``products`` filter, ``product(id:)``, ``upsertProducts`` attributes (and
the typed `ProductFilter` → MongoDB query mapping directly). The property is the same
everywhere: nothing widens a query. A filter full of ``$where``/``$ne``/dotted keys/regex-like
strings returns exactly what the equivalent literal match over the seeded catalog returns (or
a client error), and attribute keys that could act as operators or paths are refused.

Still to do once their code lands (see the harden report): the events ``properties`` input,
and the end-to-end test that 100 shoppers never see each other's data through any input.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shopfront.catalog.products import ProductFilter

from tests.security.conftest import Service, running_service

pytestmark = [
    pytest.mark.security,
    # The database driver's background threads (server monitoring) use `random` while
    # hypothesis draws examples; hypothesis mistakes that for the strategies using it.
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

SEED: list[dict[str, Any]] = [
    {
        "id": "p1",
        "brand": "Stride",
        "categoryPath": ["Shoes", "Running"],
        "amount": 1999,
        "currency": "EUR",
        "stock": 5,
        "active": True,
    },
    {
        "id": "p2",
        "brand": "Trail",
        "categoryPath": ["Shoes", "Trail"],
        "amount": 4999,
        "currency": "EUR",
        "stock": 0,
        "active": True,
    },
    {
        "id": "p3",
        "brand": "$ne",
        "categoryPath": ["$where", "x"],
        "amount": 100,
        "currency": "EUR",
        "stock": 1,
        "active": True,
    },
    {
        "id": "$gt",
        "brand": ".*",
        "categoryPath": [".*"],
        "amount": 500,
        "currency": "USD",
        "stock": 2,
        "active": True,
    },
    {
        "id": "p.5",
        "brand": "Stride",
        "categoryPath": ["Shoes"],
        "amount": 700,
        "currency": "EUR",
        "stock": 3,
        "active": False,
    },
    {
        "id": '{"$ne": null}',
        "brand": "a.b",
        "categoryPath": ["Bags"],
        "amount": 0,
        "currency": "EUR",
        "stock": 9,
        "active": True,
    },
    {
        "id": "p7",
        "brand": "this.stock > 0",
        "categoryPath": ["Bags", "Shoes"],
        "amount": 250,
        "currency": "USD",
        "stock": 0,
        "active": True,
    },
    {
        "id": "^p",
        "brand": "Trail",
        "categoryPath": ["Shoes", "Running", "$gt"],
        "amount": 3000,
        "currency": "EUR",
        "stock": 4,
        "active": True,
    },
]

TRICKY = [
    "$ne",
    "$gt",
    "$where",
    "$regex",
    "$in",
    "$or",
    "$expr",
    ".*",
    "^p",
    "a.b",
    "p.5",
    '{"$ne": null}',
    "this.stock > 0",
    "function(){return true}",
    "",
    " ",
    "p1",
    "p3",
    "Stride",
    "Trail",
    "Shoes",
    "Running",
    "Bags",
    "EUR",
    "USD",
    "\u0000",
    "$",
    ".",
]
OPERATOR_KEYS = [
    "$where",
    "$gt",
    "$ne",
    "$regex",
    "$in",
    "$or",
    "$expr",
    "$exists",
    "a.b",
    "price.amount",
    "stock",
    "id",
    "__proto__",
]

tricky_strings = st.sampled_from(TRICKY) | st.text(max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | tricky_strings,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(OPERATOR_KEYS) | tricky_strings, inner, max_size=3)
    ),
    max_leaves=8,
)
string_lists = st.lists(tricky_strings, max_size=3)
FILTER_FIELDS = [
    "ids",
    "categoryPath",
    "brands",
    "minPrice",
    "maxPrice",
    "currency",
    "inStock",
    "includeInactive",
]
filters = st.fixed_dictionaries(
    {},
    optional={
        "ids": string_lists | json_values,
        "categoryPath": string_lists | json_values,
        "brands": string_lists | json_values,
        "minPrice": st.integers(-10, 6000) | json_values,
        "maxPrice": st.integers(-10, 6000) | json_values,
        "currency": st.sampled_from(["EUR", "USD"]) | json_values,
        "inStock": st.booleans() | json_values,
        "includeInactive": st.booleans() | json_values,
    },
) | st.dictionaries(st.sampled_from(OPERATOR_KEYS + FILTER_FIELDS), json_values, max_size=3)

LIST = "query($f: ProductFilterInput) { products(filter: $f, first: 100) { nodes { id } } }"
ONE = "query($id: ID!) { product(id: $id) { id } }"
UPSERT = """
mutation($p: [ProductInput!]!) { upsertProducts(input: {products: $p}) { status reason } }
"""

HYPOTHESIS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Invalid(Exception):
    """The value does not fit the GraphQL input type: the server must answer with an error."""


def _list_of(value: Any, item: Any) -> list[Any] | None:
    """GraphQL list input coercion: null stays null, a single value becomes a list of one."""
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    return [item(v) for v in values]


def _string(v: Any) -> str:
    if not isinstance(v, str):
        raise Invalid
    return v


def _id(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, str | int):
        raise Invalid
    return str(v)


def _long(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise Invalid
    return v


def _bool(v: Any, nullable: bool = True) -> bool | None:
    if v is None and nullable:
        return None
    if not isinstance(v, bool):
        raise Invalid
    return v


def coerce(raw: Any) -> dict[str, Any]:
    """The filter as the server must understand it, or `Invalid`."""
    if not isinstance(raw, dict) or set(raw) - set(FILTER_FIELDS):
        raise Invalid
    currency = raw.get("currency")
    return {
        "ids": _list_of(raw.get("ids"), _id),
        "category_path": _list_of(raw.get("categoryPath"), _string),
        "brands": _list_of(raw.get("brands"), _string),
        "min_price": _long(raw.get("minPrice")),
        "max_price": _long(raw.get("maxPrice")),
        "currency": None if currency is None else _string(currency),
        "in_stock": _bool(raw.get("inStock")),
        "include_inactive": _bool(raw.get("includeInactive", False), nullable=False),
    }


def literal_match(f: dict[str, Any]) -> list[str]:
    """The ids a literal (operator-free) reading of ``f`` selects from `SEED`, in id order."""
    out = []
    for p in SEED:
        if not p["active"] and not f["include_inactive"]:
            continue
        if f["ids"] is not None and p["id"] not in f["ids"]:
            continue
        path = f["category_path"]
        if path and p["categoryPath"][: len(path)] != path:
            continue
        if f["brands"] is not None and p["brand"] not in f["brands"]:
            continue
        if f["min_price"] is not None and p["amount"] < f["min_price"]:
            continue
        if f["max_price"] is not None and p["amount"] > f["max_price"]:
            continue
        if f["currency"] is not None and p["currency"] != f["currency"]:
            continue
        if f["in_stock"] is True and p["stock"] <= 0:
            continue
        if f["in_stock"] is False and p["stock"] > 0:
            continue
        out.append(p["id"])
    return sorted(out)


@pytest.fixture
async def seeded(mongo_uri: str) -> AsyncIterator[Service]:
    async with running_service(mongo_uri, rate_limit_enabled=False) as svc:
        products = [
            {
                "id": p["id"],
                "title": f"Product {p['id']}",
                "brand": p["brand"],
                "categoryPath": p["categoryPath"],
                "price": {"amount": p["amount"], "currency": p["currency"]},
                "stock": p["stock"],
                "active": p["active"],
            }
            for p in SEED
        ]
        body = await svc.gql(UPSERT, {"p": products}, key=svc.merchant)
        assert [r["status"] for r in body["data"]["upsertProducts"]] == ["CREATED"] * len(SEED)
        yield svc


def codes(body: dict[str, Any]) -> set[str]:
    return {str(e.get("extensions", {}).get("code")) for e in body.get("errors") or []}


@HYPOTHESIS
@given(raw=filters)
async def test_product_filters_never_widen(seeded: Service, raw: Any) -> None:
    body = await seeded.gql(LIST, {"f": raw}, key=seeded.storefront)
    assert "INTERNAL_SERVER_ERROR" not in codes(body), body
    try:
        f = coerce(raw)
    except Invalid:
        assert body.get("data") is None and codes(body) == {"BAD_USER_INPUT"}, (raw, body)
        return
    if f["include_inactive"]:
        assert codes(body) == {"FORBIDDEN"}, body  # storefront keys never see inactive items
        return
    if (f["min_price"] is not None or f["max_price"] is not None) and f["currency"] is None:
        assert codes(body) == {"BAD_USER_INPUT"}, body
        return
    assert "errors" not in body, (raw, body)
    got = [n["id"] for n in body["data"]["products"]["nodes"]]
    assert got == literal_match(f), raw


@HYPOTHESIS
@given(pid=tricky_strings | json_values)
async def test_product_by_id_matches_only_that_literal_id(seeded: Service, pid: Any) -> None:
    body = await seeded.gql(ONE, {"id": pid}, key=seeded.storefront)
    assert "INTERNAL_SERVER_ERROR" not in codes(body), body
    try:
        wanted = _id(pid)
    except Invalid:
        assert body.get("data") is None and codes(body) == {"BAD_USER_INPUT"}, body
        return
    active = {p["id"] for p in SEED if p["active"]}
    expected = {"id": wanted} if wanted in active else None
    assert body == {"data": {"product": expected}}, (pid, body)


def valid_key(key: str) -> bool:
    k = key.strip()
    return bool(k) and not k.startswith("$") and "." not in k and "\x00" not in k and len(k) <= 100


@HYPOTHESIS
@given(
    attributes=st.lists(
        st.fixed_dictionaries({"key": tricky_strings, "value": tricky_strings}), max_size=4
    )
)
async def test_attribute_keys_cannot_be_operators_or_paths(
    seeded: Service, attributes: list[dict[str, str]]
) -> None:
    product = {
        "id": "attr-target",
        "title": "Target",
        "price": {"amount": 1234, "currency": "EUR"},
        "attributes": attributes,
    }
    before = await seeded.store.products.find_one({"id": "attr-target"}, {"_id": 0})
    body = await seeded.gql(UPSERT, {"p": [product]}, key=seeded.merchant)
    assert "errors" not in body, body
    result = body["data"]["upsertProducts"][0]
    stored = await seeded.store.products.find_one({"id": "attr-target"}, {"_id": 0})
    if all(valid_key(a["key"]) for a in attributes):
        assert result["status"] in ("CREATED", "UPDATED"), result
        expected = {a["key"].strip(): a["value"].strip() for a in attributes}
        assert stored is not None and stored["attributes"] == expected
    else:
        assert result["status"] == "REJECTED" and "attributes" in result["reason"], result
        assert stored == before  # nothing half-written
    if stored is not None:
        # No attribute key reached the document's top level or another field's path.
        assert set(stored) == {
            "id",
            "title",
            "description",
            "category_path",
            "brand",
            "tags",
            "price",
            "stock",
            "active",
            "image_url",
            "attributes",
            "created_at",
            "updated_at",
        }
        assert stored["price"] == {"amount": 1234, "currency": "EUR"}
    assert await seeded.store.products.count_documents({}) in (len(SEED), len(SEED) + 1)


@HYPOTHESIS
@given(attributes=json_values)
async def test_untyped_attribute_input_is_refused_by_the_schema(
    seeded: Service, attributes: Any
) -> None:
    product = {
        "id": "x",
        "title": "X",
        "price": {"amount": 1, "currency": "EUR"},
        "attributes": attributes,
    }
    body = await seeded.gql(UPSERT, {"p": [product]}, key=seeded.merchant)
    assert "INTERNAL_SERVER_ERROR" not in codes(body), body
    if body.get("data") is None:
        assert codes(body) == {"BAD_USER_INPUT"}, body
        return
    # Accepted only when the JSON happened to be a (list of) {key, value} strings.
    result = body["data"]["upsertProducts"][0]
    if result["status"] != "REJECTED":
        stored = await seeded.store.products.find_one({"id": "x"}, {"_id": 0})
        assert stored is not None
        assert all(valid_key(k) for k in stored["attributes"])
        await seeded.store.products.delete_one({"id": "x"})


ALLOWED_PATHS = {
    "active",
    "id",
    "category_path.",
    "brand",
    "price.amount",
    "price.currency",
    "stock",
}
ALLOWED_OPERATORS = {"$in", "$gt", "$gte", "$lte"}


def _walk_values(value: Any) -> None:
    """Client values may only appear as plain scalars, or under allow-listed operators."""
    if isinstance(value, dict):
        for op, inner in value.items():
            assert op in ALLOWED_OPERATORS, op
            _walk_values(inner)
    elif isinstance(value, list):
        for item in value:
            assert isinstance(item, str | int) and not isinstance(item, bool), item
    else:
        assert isinstance(value, str | int | bool), value


@settings(max_examples=200, deadline=None)
@given(
    ids=st.none() | st.lists(tricky_strings, max_size=3),
    path=st.none() | st.lists(tricky_strings, max_size=3),
    brands=st.none() | st.lists(tricky_strings, max_size=3),
    low=st.none() | st.integers(),
    high=st.none() | st.integers(),
    currency=st.none() | tricky_strings,
    in_stock=st.none() | st.booleans(),
    inactive=st.booleans(),
)
def test_filter_query_uses_only_allow_listed_paths_and_operators(
    ids: list[str] | None,
    path: list[str] | None,
    brands: list[str] | None,
    low: int | None,
    high: int | None,
    currency: str | None,
    in_stock: bool | None,
    inactive: bool,
) -> None:
    query = ProductFilter(
        ids=tuple(ids) if ids is not None else None,
        category_path=tuple(path) if path is not None else None,
        brands=tuple(brands) if brands is not None else None,
        min_price=low,
        max_price=high,
        currency=currency,
        in_stock=in_stock,
        include_inactive=inactive,
    ).to_query()
    for key, value in query.items():
        assert key in ALLOWED_PATHS or (
            key.startswith("category_path.") and key.split(".", 1)[1].isdigit()
        ), key
        _walk_values(value)
