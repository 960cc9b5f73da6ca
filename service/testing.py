"""A pytest kit for Shopfront and for plugin authors.

Enable it in a ``conftest.py`` with ``pytest_plugins = ["service.testing"]``. It provides:

- ``mongo_uri``: one MongoDB wire server for the whole test run — the embedded SecantusDB
  server (``:memory:`` storage), or the server named by ``SHOPFRONT_MONGODB_URI``;
- ``settings``: `Settings` pointing at a fresh database of its own for each test;
- ``store``: an open `Store` on that database, dropped afterwards;
- ``app`` / ``client``: the ASGI app with its lifespan running, and an httpx client for it;
- ``merchant_key`` / ``storefront_key``: API keys created in the test database;
- ``graphql``: ``await graphql(query, variables=None, key=...)`` returning the JSON response.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Protocol

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from service.app import create_app
from service.auth import Role, create_key
from service.config import Settings
from service.embedded import EmbeddedMongo
from service.store import Store, open_store


class GraphQLCall(Protocol):
    def __call__(
        self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = ...
    ) -> Awaitable[dict[str, Any]]: ...


@pytest.fixture(scope="session")
def embedded_mongo() -> Iterator[EmbeddedMongo | None]:
    """The embedded server for this run, or None when SHOPFRONT_MONGODB_URI names a server."""
    if os.environ.get("SHOPFRONT_MONGODB_URI"):
        yield None
        return
    server = EmbeddedMongo(":memory:", test_commands=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mongo_uri(embedded_mongo: EmbeddedMongo | None) -> str:
    if embedded_mongo is None:
        return os.environ["SHOPFRONT_MONGODB_URI"]
    return embedded_mongo.uri


def test_settings(mongo_uri: str, **overrides: Any) -> Settings:
    """Settings for a test: its own database, development error display, short timeouts."""
    values: dict[str, Any] = {
        "mongodb_uri": mongo_uri,
        "mongodb_database": f"test_{uuid.uuid4().hex[:12]}",
        "environment": "development",
        "mongo_server_selection_timeout_ms": 2000,
        "introspection": True,
        # Hermetic: merchant plugins installed in the environment load only when a test asks.
        "plugins_entry_points": False,
    }
    values.update(overrides)
    return Settings.from_env({}, **values)


test_settings.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


@pytest.fixture
def settings(mongo_uri: str) -> Settings:
    return test_settings(mongo_uri)


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    s = await open_store(settings, settings.mongodb_uri)
    try:
        yield s
    finally:
        await s.drop_database()
        await s.close()


@pytest.fixture
async def app(settings: Settings, store: Store) -> AsyncIterator[Starlette]:
    """The app, sharing the test's database with the ``store`` fixture."""
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shopfront.test") as c:
        yield c


@pytest.fixture
async def merchant_key(store: Store) -> str:
    _, plaintext = await create_key(store, Role.MERCHANT, "test-merchant")
    return plaintext


@pytest.fixture
async def storefront_key(store: Store) -> str:
    _, plaintext = await create_key(store, Role.STOREFRONT, "test-storefront")
    return plaintext


def graphql_caller(client: httpx.AsyncClient, default_key: str | None) -> GraphQLCall:
    async def call(
        query: str, variables: dict[str, Any] | None = None, *, key: str | None = default_key
    ) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        resp = await client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        body: dict[str, Any] = resp.json()
        return body

    return call


@pytest.fixture
def graphql(client: httpx.AsyncClient, merchant_key: str) -> GraphQLCall:
    """POST a GraphQL operation; the merchant key unless ``key=`` says otherwise."""
    return graphql_caller(client, merchant_key)


AsyncFactory = Callable[..., Awaitable[Any]]
