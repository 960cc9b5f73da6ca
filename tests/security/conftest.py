"""Apps with custom settings for the abuse-limit, rate-limit and authorization tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from shopfront.app import create_app
from shopfront.platform.config import Settings
from shopfront.platform.keys import Role, create_key, revoke_key
from shopfront.platform.store import Store, open_store
from shopfront.testing import test_settings
from starlette.applications import Starlette


@dataclass
class Service:
    """A running app on its own database, with one key of each kind."""

    settings: Settings
    app: Starlette
    client: httpx.AsyncClient
    store: Store
    merchant: str
    storefront: str
    revoked: str

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        token: str | None = None,
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        if token:
            headers["x-shopper-token"] = token
        return await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def gql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = (await self.post(query, variables, key=key, token=token)).json()
        return body

    async def db_commands(self, command: str) -> float:
        """How many ``command`` round trips the app's driver has made so far."""
        total = 0.0
        for metric in self.app.state.metrics.registry.collect():
            for sample in metric.samples:
                if (
                    sample.name == "shopfront_db_command_duration_seconds_count"
                    and sample.labels.get("command") == command
                ):
                    total += sample.value
        return total


ServiceFactory = Callable[..., AbstractAsyncContextManager[Service]]


@asynccontextmanager
async def running_service(mongo_uri: str, **overrides: Any) -> AsyncIterator[Service]:
    settings = test_settings(mongo_uri, **overrides)
    store = await open_store(settings, settings.mongodb_uri)
    try:
        _, merchant = await create_key(store, Role.MERCHANT, "sec-merchant")
        _, storefront = await create_key(store, Role.STOREFRONT, "sec-storefront")
        revoked_record, revoked = await create_key(store, Role.MERCHANT, "sec-revoked")
        await revoke_key(store, revoked_record.id)
        app = create_app(settings)
        async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://shopfront.test"
            ) as client:
                yield Service(settings, app, client, store, merchant, storefront, revoked)
    finally:
        await store.drop_database()
        await store.close()


@pytest.fixture
def service_with(mongo_uri: str) -> ServiceFactory:
    """``async with service_with(max_query_depth=3) as svc: ...``"""

    def factory(**overrides: Any) -> AbstractAsyncContextManager[Service]:
        return running_service(mongo_uri, **overrides)

    return factory


@pytest.fixture
async def service(mongo_uri: str) -> AsyncIterator[Service]:
    """Production-like settings: introspection and suggestions off, errors masked."""
    async with running_service(mongo_uri, environment="production", introspection=False) as svc:
        yield svc
