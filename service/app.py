"""The ASGI application: GraphQL at /graphql, health at /livez and /readyz, /metrics.

`create_app(settings)` returns a starlette app whose lifespan opens the store (and closes it),
so the app owns every resource it uses; uvicorn (or a test client) only drives it.

Before a GraphQL request reaches strawberry, the HTTP layer (`ShopfrontGraphQL.__call__`)
refuses, each with a GraphQL-shaped error body and a code:

- a body over ``max_body_bytes`` (413 ``BODY_TOO_LARGE``), counted as it streams in;
- a batch of more than ``max_operations_per_batch`` operations (400 ``TOO_MANY_OPERATIONS``);
- a client address over its rate limit (429 ``RATE_LIMITED`` with ``Retry-After``).

Errors raised later with the codes ``RATE_LIMITED`` or ``OVERLOADED`` (per-key rate limit,
admission gates) turn the HTTP status into 429 / 503 with ``Retry-After`` as well.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from shopfront.extend.config import ConfigFile
from shopfront.platform import admission, health, keycache, ratelimit
from shopfront.platform.config import Settings
from shopfront.platform.logs import RequestInfo, bind_request, current_request, log_request
from shopfront.platform.metrics import Metrics
from shopfront.platform.store import CommandTimer, DatabaseUnavailable, open_store
from shopfront.runtime import (
    Runtime,
    start_components,
    start_experiments,
    stop_components,
    stop_experiments,
)
from shopfront.schema import build_schema
from shopfront.schema.context import Context
from shopfront.schema.errors import HTTP_STATUS_FOR_CODE, RATE_LIMITED
from shopfront.schema.gate import bearer_token, rate_limited_error
from shopfront.storefront.sources import ProfileSource
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse

__all__ = [
    "ShopfrontGraphQL",
    "bearer_token",
    "close_components",
    "create_app",
    "request_id_for",
]

log = logging.getLogger(__name__)

BODY_TOO_LARGE = "BODY_TOO_LARGE"
TOO_MANY_OPERATIONS = "TOO_MANY_OPERATIONS"

_REQUEST_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def request_id_for(request: Request | WebSocket | Mapping[str, str]) -> str:
    """The caller's X-Request-ID when it is sane, else a fresh one."""
    headers = request.headers if isinstance(request, Request | WebSocket) else request
    given = headers.get("x-request-id", "")
    if 1 <= len(given) <= 64 and set(given) <= _REQUEST_ID_CHARS:
        return given
    return uuid.uuid4().hex


def error_body(code: str, message: str, request_id: str, **extra: Any) -> dict[str, Any]:
    """A GraphQL-shaped error response for requests refused before GraphQL ran."""
    extensions = {"code": code, "requestId": request_id, **extra}
    return {"data": None, "errors": [{"message": message, "extensions": extensions}]}


class _BodyTooLarge(Exception):
    pass


class ShopfrontGraphQL(GraphQL[Context, None]):
    """strawberry's ASGI view with Shopfront's HTTP-level limits and per-request context."""

    def __init__(
        self,
        runtime_ref: dict[str, Runtime],
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        limiter: ratelimit.RateLimiter | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._runtime_ref = runtime_ref
        self.settings = settings
        self.metrics = metrics
        self.limiter = limiter

    # -- HTTP layer ------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        info = RequestInfo(
            request_id=request_id_for(headers),
            method=scope.get("method", ""),
            path=scope.get("path", ""),
            client=client[0] if client else None,
        )
        status = 500
        metrics = self.metrics

        async def send_tracking(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", info.request_id.encode()),
                ]
            await send(message)

        if metrics is not None:
            metrics.http_in_flight.inc()
        try:
            with bind_request(info):
                refusal, replay = await self._screen(scope, receive, headers, info)
                if refusal is not None:
                    await refusal(scope, receive, send_tracking)
                else:
                    await super().__call__(scope, replay, send_tracking)
        finally:
            if metrics is not None:
                metrics.http_in_flight.dec()
                metrics.http_requests.labels("/graphql", str(status)).inc()
                for part in info.degraded:
                    metrics.degraded.labels(part).inc()
            log_request(info, status)

    async def _screen(
        self, scope: Scope, receive: Receive, headers: Mapping[str, str], info: RequestInfo
    ) -> tuple[Response | None, Receive]:
        """Read the body within its limit, count operations, charge the address bucket.
        Returns a refusal response, or None and a ``receive`` that replays the body."""
        limit = self.settings.max_body_bytes
        try:
            body = await self._read_body(receive, headers, limit)
        except _BodyTooLarge:
            return self._refuse(
                413,
                BODY_TOO_LARGE,
                f"the request body is larger than {limit} bytes",
                info,
                limit=limit,
            ), receive
        operations = 1
        if body.lstrip()[:1] == b"[":
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None  # strawberry answers malformed JSON itself
            if isinstance(parsed, list):
                operations = max(1, len(parsed))
                most = self.settings.max_operations_per_batch
                if len(parsed) > most:
                    return self._refuse(
                        400,
                        TOO_MANY_OPERATIONS,
                        f"the batch has {len(parsed)} operations; the limit is {most}",
                        info,
                        limit=most,
                    ), receive
        if self.limiter is not None:
            try:
                self.limiter.check_address(info.client, operations)
            except ratelimit.RateLimited as exc:
                if self.metrics is not None:
                    self.metrics.rate_limited.labels(exc.bucket).inc()
                error = rate_limited_error(exc, info.request_id)
                return self._refuse(
                    429,
                    RATE_LIMITED,
                    error.message,
                    info,
                    retry_after=exc.retry_after_header,
                ), receive

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return None, replay

    @staticmethod
    async def _read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # client went away; strawberry will see an empty body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _refuse(
        self,
        status: int,
        code: str,
        message: str,
        info: RequestInfo,
        *,
        retry_after: int | None = None,
        **extra: Any,
    ) -> Response:
        info.error_codes.append(code)
        if self.metrics is not None:
            self.metrics.http_rejected.labels(code).inc()
        if retry_after is not None:
            extra["retryAfter"] = retry_after
        headers = {"retry-after": str(retry_after)} if retry_after is not None else None
        return JSONResponse(
            error_body(code, message, info.request_id, **extra), status, headers=headers
        )

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        """Answers 429/503 with Retry-After when an operation was refused for load."""
        response = super().create_response(response_data, sub_response)
        results = response_data if isinstance(response_data, list) else [response_data]
        status, retry_after = 0, 0
        for result in results:
            for error in result.get("errors") or []:
                ext = error.get("extensions") if isinstance(error, dict) else None
                if not isinstance(ext, dict):
                    continue
                code_status = HTTP_STATUS_FOR_CODE.get(str(ext.get("code")))
                if code_status is not None:
                    status = max(status, code_status)
                    retry_after = max(retry_after, int(ext.get("retryAfter") or 1))
        if status:
            response.status_code = status
            response.headers["retry-after"] = str(retry_after)
        return response

    # -- GraphQL context -------------------------------------------------------------------

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        """The request's context. The key is looked up later, after the document passed the
        limits (schema/gate.py), so a refused document never costs a database call."""
        runtime = self._runtime_ref["runtime"]
        info = current_request()
        rid = info.request_id if info is not None else request_id_for(request)
        ctx = Context(
            runtime=runtime,
            request=request if isinstance(request, Request) else None,
            request_id=rid,
        )
        if bearer_token(request) is None and request.headers.get("authorization"):
            ctx.auth_problem = "the Authorization header must be 'Bearer <key>'"
        return ctx


async def close_components(runtime: Runtime, budget_s: float) -> None:
    """Give ``runtime.closables`` (pending-write buffers, ...) a chance to flush, newest
    first, within the shutdown drain budget."""
    deadline = time.monotonic() + budget_s
    for component in reversed(runtime.closables):
        remaining = max(0.1, deadline - time.monotonic())
        try:
            async with asyncio.timeout(remaining):
                await component.aclose()
        except Exception:
            log.exception("component %s failed to close cleanly", type(component).__name__)


def create_app(
    settings: Settings,
    *,
    database: str | None = None,
    plugins: Sequence[tuple[str, object]] = (),
    plugin_config: ConfigFile | None = None,
    profiles: ProfileSource | None = None,
) -> Starlette:
    """The Shopfront ASGI app. ``settings.mongodb_uri`` must name a reachable server
    (`shopfront serve` starts the embedded one first when none is configured).

    ``plugins`` are (name, plugin object) pairs registered after the built-ins;
    ``plugin_config`` replaces the ``SHOPFRONT_CONFIG`` file; ``profiles`` is the shopper
    profile source (default: every shopper served without a profile)."""
    if not settings.mongodb_uri:
        raise DatabaseUnavailable("create_app needs settings.mongodb_uri")
    ref: dict[str, Runtime] = {}
    metrics = Metrics()
    limiter = ratelimit.RateLimiter.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await open_store(
            settings,
            settings.mongodb_uri,
            database,
            listeners=[CommandTimer(metrics.observe_db_command)],
        )
        monitor = health.HealthMonitor(
            store,
            interval_s=settings.health_check_interval_s,
            timeout_s=settings.health_check_timeout_s,
            metrics=metrics,
        )
        runtime = Runtime(
            settings=settings,
            store=store,
            metrics=metrics,
            limiter=limiter,
            key_cache=keycache.KeyCache(settings.key_cache_max_age_s),
            health=monitor,
            ingestion=admission.ingestion_gate_for(settings, metrics),
        )
        try:
            await start_components(
                runtime, plugins=plugins, plugin_config=plugin_config, profiles=profiles
            )
        except BaseException:
            await store.close()
            raise
        ref["runtime"] = runtime
        app.state.runtime = runtime
        monitor.start()
        registry = await start_experiments(runtime)
        composer = runtime.storefront
        if composer is not None:
            composer.database_up = lambda: monitor.database_up
            composer.experiments = registry
            composer.exposures = runtime.exposures
        log.info("shopfront ready (database %s, driver %s)", store.db.name, store.driver)
        try:
            yield
        finally:
            runtime.draining = True
            await stop_experiments(runtime)
            await stop_components(runtime)
            await monitor.stop()
            await close_components(runtime, settings.shutdown_drain_s)
            await store.close()
            log.info("shopfront stopped: database client closed")

    graphql = ShopfrontGraphQL(
        ref,
        settings,
        metrics=metrics,
        limiter=limiter,
        schema=build_schema(settings),
        graphql_ide="graphiql" if settings.introspection_enabled else None,
    )

    async def livez(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        runtime = ref.get("runtime")
        if runtime is None:
            metrics.ready.set(0)
            return JSONResponse({"status": "unready", "reasons": ["starting"]}, 503)
        monitor = health.health_of(runtime)
        if monitor is None:  # pragma: no cover - the lifespan always registers it
            return JSONResponse({"status": "unready", "reasons": ["no health monitor"]}, 503)
        state = monitor.readiness(draining=runtime.draining)
        if not state.ready:
            return JSONResponse({"status": "unready", "reasons": list(state.reasons)}, 503)
        return JSONResponse({"status": "ready"})

    async def metrics_endpoint(request: Request) -> Response:
        body, content_type = metrics.exposition()
        return Response(body, headers={"content-type": content_type})

    routes = [
        Route("/livez", livez),
        Route("/readyz", readyz),
        Route("/graphql", graphql, methods=["GET", "POST"]),
    ]
    if settings.metrics_enabled:
        routes.append(Route("/metrics", metrics_endpoint))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.metrics = metrics
    return app
