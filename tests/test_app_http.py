"""GraphQL over HTTP: media types, status codes and error shapes a client can rely on;
`/` and the offline GraphiQL page."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from shopfront.app import GRAPHIQL_ASSETS, create_app, negotiate
from shopfront.platform.config import Settings
from shopfront.platform.store import Store

GRAPHQL_RESPONSE = "application/graphql-response+json"
PRODUCTS = {"query": "{ products(first: 1) { nodes { id } } }"}


def auth(key: str, accept: str | None = None) -> dict[str, str]:
    headers = {"authorization": f"Bearer {key}"}
    if accept:
        headers["accept"] = accept
    return headers


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE};q=0.5", "application/json"),
        (f"application/json;q=0.1, {GRAPHQL_RESPONSE};q=0", "application/json"),
    ],
)
def test_negotiation(accept: str | None, media_type: str) -> None:
    assert negotiate(accept) == media_type


async def test_graphql_response_json_when_accepted(
    client: httpx.AsyncClient, storefront_key: str
) -> None:
    resp = await client.post(
        "/graphql", json=PRODUCTS, headers=auth(storefront_key, GRAPHQL_RESPONSE)
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert resp.json() == {"data": {"products": {"nodes": []}}}
    legacy = await client.post("/graphql", json=PRODUCTS, headers=auth(storefront_key))
    assert legacy.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"query": "{ products(first: 1) { nodes { id } }"}, "GRAPHQL_PARSE_FAILED"),
        ({"query": "{ nope }"}, "GRAPHQL_VALIDATION_FAILED"),
        (
            {
                "query": "query($n: Int!) { products(first: $n) { nodes { id } } }",
                "variables": {"n": "five"},
            },
            "BAD_USER_INPUT",
        ),
    ],
)
async def test_request_errors_have_no_data_and_400_for_the_new_media_type(
    client: httpx.AsyncClient, storefront_key: str, body: dict[str, Any], code: str
) -> None:
    new = await client.post("/graphql", json=body, headers=auth(storefront_key, GRAPHQL_RESPONSE))
    assert new.status_code == 400
    assert new.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert "data" not in new.json() and new.json()["errors"][0]["extensions"]["code"] == code
    legacy = await client.post("/graphql", json=body, headers=auth(storefront_key))
    assert legacy.status_code == 200  # application/json clients read errors from a 200
    assert "data" not in legacy.json()


async def test_execution_errors_keep_data_null(client: httpx.AsyncClient) -> None:
    resp = await client.post("/graphql", json=PRODUCTS, headers=auth("sf_storefront_unknown"))
    body = resp.json()
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b'{"query": "{ __typename }"}', "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b"query={__typename}", "application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b'{"query": "{ __typename }"}', None, 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b'{"query": ', "application/json", 400, "BAD_REQUEST"),
        (b'{"query": 7}', "application/json", 400, "BAD_REQUEST"),
    ],
)
async def test_malformed_requests_get_graphql_shaped_json(
    client: httpx.AsyncClient,
    storefront_key: str,
    content: bytes,
    content_type: str | None,
    status: int,
    code: str,
) -> None:
    headers = auth(storefront_key)
    if content_type:
        headers["content-type"] = content_type
    resp = await client.post("/graphql", content=content, headers=headers)
    assert resp.status_code == status
    assert resp.headers["content-type"].startswith("application/json")
    [error] = resp.json()["errors"]
    assert error["extensions"]["code"] == code and error["message"]
    assert error["extensions"]["requestId"] == resp.headers["x-request-id"]


async def test_other_methods_get_a_graphql_shaped_405(client: httpx.AsyncClient) -> None:
    resp = await client.put("/graphql", json=PRODUCTS)
    assert resp.status_code == 405 and resp.headers["allow"] == "GET, POST"
    assert resp.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


async def test_root_lists_the_endpoints(client: httpx.AsyncClient) -> None:
    resp = await client.get("/")
    assert resp.status_code == 200
    endpoints = resp.json()["endpoints"]
    assert {"/graphql", "/livez", "/readyz", "/metrics"} <= set(endpoints)
    for path in endpoints:
        assert (await client.get(path)).status_code != 404, path


@pytest.fixture
async def demo_client(settings: Settings, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(dataclasses.replace(settings, introspection=True), demo=True)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo.test") as c:
            yield c


async def test_demo_root_redirects_to_graphiql(demo_client: httpx.AsyncClient) -> None:
    resp = await demo_client.get("/")
    assert resp.status_code == 307 and resp.headers["location"] == "/graphql"


async def test_graphiql_loads_every_asset_from_the_service(
    demo_client: httpx.AsyncClient,
) -> None:
    page = await demo_client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) == 5
    assert all(a.startswith(f"{GRAPHIQL_ASSETS}/") for a in assets), assets
    for asset in assets:
        resp = await demo_client.get(asset)
        assert resp.status_code == 200, asset
        assert len(resp.content) > 100
    licence = await demo_client.get(f"{GRAPHIQL_ASSETS}/LICENSE.graphiql")
    assert "MIT License" in licence.text


async def test_a_mutation_over_get_is_a_graphql_shaped_400(
    client: httpx.AsyncClient, merchant_key: str
) -> None:
    query = 'mutation { deleteProducts(ids: ["x"]) { id } }'
    resp = await client.get("/graphql", params={"query": query}, headers=auth(merchant_key))
    assert resp.status_code == 400
    assert resp.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
