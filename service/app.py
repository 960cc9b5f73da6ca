"""The ASGI application: GraphQL at /graphql, health at /livez and /readyz.

`create_app(settings)` returns a starlette app whose lifespan opens the store (and closes it),
so the app owns every resource it uses; uvicorn (or a test client) only drives it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from schema import build_schema
from schema.context import Context
from service import auth, storefront
from service.config import Settings
from service.plugin_config import ConfigFile
from service.runtime import Runtime
from service.store import DatabaseUnavailable, PyMongoError, open_store

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id_for(request: Request | WebSocket) -> str:
    """The caller's X-Request-ID when it is sane, else a fresh one."""
    given = request.headers.get("x-request-id", "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def bearer_token(request: Request | WebSocket) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class ShopfrontGraphQL(GraphQL[Context, None]):
    """Builds each request's context: the runtime, the caller's key, a request id."""

    def __init__(self, runtime_ref: dict[str, Runtime], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._runtime_ref = runtime_ref

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        runtime = self._runtime_ref["runtime"]
        rid = request_id_for(request)
        if isinstance(response, Response):
            response.headers["x-request-id"] = rid
        ctx = Context(
            runtime=runtime,
            request=request if isinstance(request, Request) else None,
            request_id=rid,
        )
        token = bearer_token(request)
        if token is None:
            if request.headers.get("authorization"):
                ctx.auth_problem = "the Authorization header must be 'Bearer <key>'"
            return ctx
        try:
            ctx.principal = await auth.authenticate(runtime.store, token)
        except PyMongoError:
            # Without the key store nobody can be authorised; say so instead of a 500.
            ctx.auth_problem = "the key store is unavailable; try again shortly"
            return ctx
        if ctx.principal is None:
            ctx.auth_problem = "unknown or revoked API key"
        return ctx


def create_app(
    settings: Settings,
    *,
    database: str | None = None,
    plugins: Sequence[tuple[str, object]] = (),
    plugin_config: ConfigFile | None = None,
    profiles: storefront.ProfileSource | None = None,
) -> Starlette:
    """The Shopfront ASGI app. ``settings.mongodb_uri`` must name a reachable server
    (`shopfront serve` starts the embedded one first when none is configured).

    ``plugins`` are (name, plugin object) pairs registered after the built-ins;
    ``plugin_config`` replaces the ``SHOPFRONT_CONFIG`` file; ``profiles`` is the shopper
    profile source (default: every shopper served without a profile)."""
    if not settings.mongodb_uri:
        raise DatabaseUnavailable("create_app needs settings.mongodb_uri")
    ref: dict[str, Runtime] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await open_store(settings, settings.mongodb_uri, database)
        runtime = Runtime(settings=settings, store=store)
        try:
            await storefront.start_components(
                runtime, plugins=plugins, plugin_config=plugin_config, profiles=profiles
            )
        except BaseException:
            await store.close()
            raise
        ref["runtime"] = runtime
        app.state.runtime = runtime
        log.info("shopfront ready (database %s, driver %s)", store.db.name, store.driver)
        try:
            yield
        finally:
            runtime.draining = True
            await storefront.stop_components(runtime)
            await store.close()

    graphql = ShopfrontGraphQL(
        ref,
        schema=build_schema(settings),
        graphql_ide="graphiql" if settings.introspection_enabled else None,
    )

    async def livez(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        runtime = ref.get("runtime")
        if runtime is None or runtime.draining:
            return JSONResponse({"status": "unready", "reason": "starting or draining"}, 503)
        try:
            await asyncio.wait_for(runtime.store.ping(timeout_s=1.0), timeout=1.5)
        except (TimeoutError, DatabaseUnavailable) as exc:
            return JSONResponse({"status": "unready", "reason": f"database: {exc}"}, 503)
        return JSONResponse({"status": "ready"})

    return Starlette(
        routes=[
            Route("/livez", livez),
            Route("/readyz", readyz),
            Route("/graphql", graphql, methods=["GET", "POST"]),
        ],
        lifespan=lifespan,
    )
