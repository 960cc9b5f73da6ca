"""GraphQL abuse limits: each refused with its code before any resolver or database call."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from shopfront.catalog.snapshot import CatalogSnapshot
from shopfront.platform.admission import Overloaded
from shopfront.schema.limits import DocumentCache, strip_suggestions

from tests.security.conftest import Service, ServiceFactory

pytestmark = pytest.mark.security

PRODUCTS = "query List { products(first: 5) { nodes { id price { amount } } } }"


def codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]


async def assert_refused_without_db(svc: Service, query: str, code: str) -> dict[str, Any]:
    """``query`` is refused with ``code``, no data, and no key lookup or read was made."""
    finds = await svc.db_commands("find")
    body = await svc.gql(query, key=svc.merchant)
    assert "data" not in body, body  # a request error: refused before execution
    assert code in codes(body), body
    assert await svc.db_commands("find") == finds, "a refused document reached the database"
    return body


async def test_normal_query_passes_and_reaches_the_database(service: Service) -> None:
    finds = await service.db_commands("find")
    body = await service.gql(PRODUCTS, key=service.storefront)
    assert body == {"data": {"products": {"nodes": []}}}  # from the in-memory catalog
    # A product this instance has not seen is read from the database: the control for the
    # tests below, which must be refused before any read.
    body = await service.gql('{ product(id: "never-stored") { id } }', key=service.storefront)
    assert body == {"data": {"product": None}}
    assert await service.db_commands("find") > finds


async def test_depth_limit_counts_through_fragments(service_with: ServiceFactory) -> None:
    async with service_with(max_query_depth=3) as svc:
        ok = await svc.gql("{ products { nodes { id } } }", key=svc.merchant)
        assert "errors" not in ok
        deep = "{ products { nodes { price { amount } } } }"
        body = await assert_refused_without_db(svc, deep, "QUERY_TOO_DEEP")
        assert "3" in body["errors"][0]["message"]
        via_fragments = """
            query Q { products { ...Conn } }
            fragment Conn on ProductConnection { nodes { ...P } }
            fragment P on Product { price { amount } }
        """
        await assert_refused_without_db(svc, via_fragments, "QUERY_TOO_DEEP")
        # Inline fragments count too.
        inline = "{ products { ... on ProductConnection { nodes { price { amount } } } } }"
        await assert_refused_without_db(svc, inline, "QUERY_TOO_DEEP")


async def test_token_limit_counts_comments(service_with: ServiceFactory) -> None:
    async with service_with(max_query_tokens=50) as svc:
        fields = " ".join(["id"] * 60)
        body = await assert_refused_without_db(
            svc, f"{{ products {{ nodes {{ {fields} }} }} }}", "TOO_MANY_TOKENS"
        )
        assert body["errors"][0]["extensions"]["limit"] == 50
        comments = "\n".join(f"# {i}" for i in range(60))
        await assert_refused_without_db(
            svc, f"{comments}\n{{ products {{ nodes {{ id }} }} }}", "TOO_MANY_TOKENS"
        )


async def test_deep_nesting_beyond_the_parser_is_refused_cleanly(
    service_with: ServiceFactory,
) -> None:
    query = "{ products " + "{ nodes " * 3000 + "}" * 3001
    async with service_with(max_query_tokens=100_000) as svc:
        body = await assert_refused_without_db(svc, query, "QUERY_TOO_DEEP")
        assert body["errors"][0]["message"] == "the document is nested too deeply to parse"
    async with service_with() as svc:  # default limits: either limit may stop it first
        body = await svc.gql(query, key=svc.merchant)
        assert "data" not in body
        assert codes(body) in (["QUERY_TOO_DEEP"], ["TOO_MANY_TOKENS"]), body


async def test_alias_limit_expands_fragments(service_with: ServiceFactory) -> None:
    async with service_with(max_aliases=3) as svc:
        three = "{ a: products { nodes { b: id c: title } } }"
        assert "errors" not in await svc.gql(three, key=svc.merchant)
        four = "{ a: products { nodes { b: id c: title d: brand } } }"
        await assert_refused_without_db(svc, four, "TOO_MANY_ALIASES")
        # Two aliases written once, spread twice: four aliased fields executed.
        spread = """
            { products { nodes { ...A } more: nodes { ...A } } }
            fragment A on Product { x: id y: title }
        """
        await assert_refused_without_db(svc, spread, "TOO_MANY_ALIASES")


async def test_cost_multiplies_page_sizes(service: Service) -> None:
    page = "products(first: 100) { nodes { id price { amount } } }"
    # 1 + 100 * (1 + 1) = 201 each: three fit in 1000, five do not.
    three = "{ " + " ".join(f"p{i}: {page}" for i in range(3)) + " }"
    assert "errors" not in await service.gql(three, key=service.merchant)
    five = "{ " + " ".join(f"p{i}: {page}" for i in range(5)) + " }"
    body = await assert_refused_without_db(service, five, "QUERY_TOO_COSTLY")
    assert "1005" in body["errors"][0]["message"]


async def test_cost_of_a_variable_page_size_is_the_largest_page(service: Service) -> None:
    query = """
        query($n: Int!) { a: products(first: $n) { nodes { price { amount } } }
                          b: products(first: $n) { nodes { price { amount } } }
                          c: products(first: $n) { nodes { price { amount } } } }
    """
    # Each is costed at max_page_size (100) whatever $n is: 3 * 201 = 603 fits ...
    assert "errors" not in await service.gql(query, {"n": 1}, key=service.merchant)
    five = (
        "query($n: Int!) { "
        + " ".join(
            f"p{i}: products(first: $n) {{ nodes {{ price {{ amount }} }} }}" for i in range(5)
        )
        + " }"
    )
    # ... five are not, even with $n = 1 (a cached validation cannot depend on $n).
    body = await service.gql(five, {"n": 1}, key=service.merchant)
    assert codes(body) == ["QUERY_TOO_COSTLY"]


async def test_fragment_bomb_is_measured_without_expanding_it(service: Service) -> None:
    """Fragments that each spread the next one twice describe 2^60 product lists; a naive
    expansion would never finish. The memoised measure refuses it at once."""
    levels = 60
    frags = "\n".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    query = f"{{ ...F0 }}\n{frags}\nfragment F{levels} on Query {{ products {{ nodes {{ id }} }} }}"
    body = await assert_refused_without_db(service, query, "QUERY_TOO_COSTLY")
    assert "over 10^12" in body["errors"][0]["message"]


async def test_cyclic_and_unknown_fragments_neither_crash_nor_bypass(service: Service) -> None:
    cyclic = """
        { products { nodes { ...A } } }
        fragment A on Product { id ...B }
        fragment B on Product { title ...A }
    """
    body = await assert_refused_without_db(service, cyclic, "GRAPHQL_VALIDATION_FAILED")
    assert "INTERNAL_SERVER_ERROR" not in codes(body)
    unknown = "{ products { nodes { ...Nowhere } } }"
    body = await assert_refused_without_db(service, unknown, "GRAPHQL_VALIDATION_FAILED")
    assert "INTERNAL_SERVER_ERROR" not in codes(body)


async def test_syntax_errors_have_a_code(service: Service) -> None:
    body = await assert_refused_without_db(service, "{ products { ", "GRAPHQL_PARSE_FAILED")
    assert body["errors"][0]["message"].startswith("Syntax Error")


async def test_field_suggestions_are_hidden_in_production(service: Service) -> None:
    body = await service.gql("{ prodcts { nodes { id } } }", key=service.merchant)
    message = body["errors"][0]["message"]
    assert "Did you mean" not in message and "products" not in message
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    # Variable coercion errors (after validation) are stripped as well.
    query = "query($f: ProductFilterInput) { products(filter: $f) { nodes { id } } }"
    body = await service.gql(query, {"f": {"brandz": ["x"]}}, key=service.merchant)
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "brands" not in body["errors"][0]["message"]


async def test_field_suggestions_are_kept_when_enabled(service_with: ServiceFactory) -> None:
    async with service_with(field_suggestions=True) as svc:
        body = await svc.gql("{ prodcts { nodes { id } } }", key=svc.merchant)
        assert "Did you mean 'products'" in body["errors"][0]["message"]


def test_strip_suggestions_removes_every_form() -> None:
    assert (
        strip_suggestions("Cannot query field 'x'. Did you mean 'y'?") == "Cannot query field 'x'."
    )
    assert strip_suggestions("Bad. Did you mean 'a', 'b', or 'c'?") == "Bad."
    assert strip_suggestions("Bad. Did you mean the enum value 'A'?") == "Bad."


async def test_introspection_is_off_unless_enabled(
    service: Service, service_with: ServiceFactory
) -> None:
    query = "{ __schema { queryType { name } } }"
    body = await service.gql(query, key=service.merchant)
    assert "data" not in body and set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert "introspection" in body["errors"][0]["message"]
    async with service_with(introspection=True) as svc:
        body = await svc.gql(query, key=svc.merchant)
        assert body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_get_cannot_run_mutations(service: Service) -> None:
    await service.gql(
        "mutation($p: [ProductInput!]!) { upsertProducts(input: {products: $p}) { status } }",
        {"p": [{"id": "keep", "title": "Keep", "price": {"amount": 1, "currency": "EUR"}}]},
        key=service.merchant,
    )
    resp = await service.client.get(
        "/graphql",
        params={"query": 'mutation { deleteProducts(input: {productIds: ["keep"]}) { deleted } }'},
        headers={"authorization": f"Bearer {service.merchant}"},
    )
    assert resp.status_code == 400
    assert "mutation" in resp.text.lower()
    assert await service.store.products.count_documents({"id": "keep"}) == 1
    # Queries over GET still work.
    resp = await service.client.get(
        "/graphql",
        params={"query": '{ product(id: "keep") { id } }'},
        headers={"authorization": f"Bearer {service.storefront}"},
    )
    assert resp.json() == {"data": {"product": {"id": "keep"}}}


async def test_body_size_limit(service_with: ServiceFactory) -> None:
    async with service_with(max_body_bytes=2048) as svc:
        padding = "x" * 3000
        resp = await svc.client.post(
            "/graphql",
            json={"query": PRODUCTS, "variables": {"pad": padding}},
            headers={"authorization": f"Bearer {svc.merchant}"},
        )
        assert resp.status_code == 413
        body = resp.json()
        assert codes(body) == ["BODY_TOO_LARGE"] and body["data"] is None
        assert body["errors"][0]["extensions"]["requestId"] == resp.headers["x-request-id"]

        async def chunks() -> Any:  # no Content-Length: counted as it streams in
            for _ in range(10):
                yield b" " * 300

        resp = await svc.client.post(
            "/graphql", content=chunks(), headers={"content-type": "application/json"}
        )
        assert resp.status_code == 413


async def test_batches_are_bounded(service_with: ServiceFactory) -> None:
    async with service_with(max_operations_per_batch=3) as svc:
        headers = {"authorization": f"Bearer {svc.merchant}"}
        batch = [{"query": PRODUCTS}] * 3
        resp = await svc.client.post("/graphql", json=batch, headers=headers)
        assert resp.status_code == 200
        assert [r["data"] for r in resp.json()] == [{"products": {"nodes": []}}] * 3
        resp = await svc.client.post("/graphql", json=[{"query": PRODUCTS}] * 4, headers=headers)
        assert resp.status_code == 400
        assert codes(resp.json()) == ["TOO_MANY_OPERATIONS"]
    async with service_with(max_operations_per_batch=1) as svc:
        resp = await svc.client.post(
            "/graphql",
            json=[{"query": PRODUCTS}],
            headers={"authorization": f"Bearer {svc.merchant}"},
        )
        assert resp.status_code == 400  # batching is off


async def test_internal_errors_are_masked_with_the_request_id(
    service: Service, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail: connection string mongodb://admin:pw@db")

    monkeypatch.setattr(CatalogSnapshot, "page", broken)
    with caplog.at_level(logging.ERROR, logger="shopfront.graphql"):
        resp = await service.client.post(
            "/graphql",
            json={"query": PRODUCTS},
            headers={"authorization": f"Bearer {service.merchant}", "x-request-id": "req-42"},
        )
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] == "req-42"
    error = resp.json()["errors"][0]
    assert error["message"] == "Internal error (request id req-42)."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-42"}
    assert "secret" not in resp.text
    logged = [r for r in caplog.records if "req-42" in r.getMessage()]
    assert logged and "secret detail" in str(logged[0].exc_info[1])  # type: ignore[index]


async def test_overloaded_maps_to_503_with_retry_after(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: Any, **kwargs: Any) -> Any:
        raise Overloaded("ingestion", 3)

    monkeypatch.setattr(CatalogSnapshot, "page", full)
    resp = await service.post(PRODUCTS, key=service.merchant)
    assert resp.status_code == 503
    assert resp.headers["retry-after"] == "3"
    ext = resp.json()["errors"][0]["extensions"]
    assert ext["code"] == "OVERLOADED" and ext["retryAfter"] == 3


def test_only_small_documents_are_cached() -> None:
    cache = DocumentCache(size=2, max_tokens=20)
    small = "{ products { nodes { id } } }"
    first, cached = cache.parse(small, {})
    again, cached_again = cache.parse(small, {})
    assert cached and cached_again and first is again
    big = "{ " + " ".join(f"a{i}: products {{ nodes {{ id }} }}" for i in range(10)) + " }"
    one, big_cached = cache.parse(big, {})
    two, _ = cache.parse(big, {})
    assert not big_cached and one is not two  # parsed every time, never held
    for text in ("{ a }", "{ b }", "{ c }"):
        cache.parse(text, {})
    assert cache.parse(small, {})[0] is not first  # evicted: the cache keeps its size
    assert cache.parse(small, {"max_tokens": 50})[0] is not cache.parse(small, {})[0]
