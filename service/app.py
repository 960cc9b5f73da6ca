"""The ASGI application: GraphQL at /graphql, health at /livez and /readyz, /metrics; CORS for
the origins in ``SHOPFRONT_CORS_ORIGINS`` (`cors_middleware`).

`create_app(settings)` returns a starlette app whose lifespan opens the store (and closes it),
so the app owns every resource it uses; uvicorn (or a test client) only drives it.

Before a GraphQL request reaches strawberry, the HTTP layer (`ShopfrontGraphQL.__call__`)
refuses, each with a GraphQL-shaped error body and a code:

- a body over ``max_body_bytes`` (413 ``BODY_TOO_LARGE``), counted as it streams in;
- a batch of more than ``max_operations_per_batch`` operations (400 ``TOO_MANY_OPERATIONS``),
  whatever its encoding (a byte-order mark or UTF-16 does not hide a batch);
- a client address over its rate limit (429 ``RATE_LIMITED`` with ``Retry-After``). The
  address is the peer's, or the one a proxy in ``SHOPFRONT_TRUSTED_PROXIES`` forwarded
  (`shopfront.platform.client_address`).

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
from contextvars import ContextVar
from typing import Any

from cross_web import HTTPException
from shopfront.console import console_routes
from shopfront.extend.config import ConfigFile
from shopfront.platform import admission, health, keycache, ratelimit
from shopfront.platform.client_address import ClientAddresses
from shopfront.platform.config import Settings, cors_origin_patterns
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
from shopfront.schema.errors import HTTP_STATUS_FOR_CODE, ErrorCode
from shopfront.schema.gate import bearer_token, rate_limited_error
from shopfront.storefront.sources import ProfileSource
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse

__all__ = [
    "ShopfrontGraphQL",
    "bearer_token",
    "close_components",
    "cors_middleware",
    "create_app",
    "request_id_for",
]

log = logging.getLogger(__name__)

# Codes of HTTP errors raised by strawberry before a GraphQL operation exists.
_CODE_FOR_HTTP_STATUS = {
    400: ErrorCode.BAD_REQUEST,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    406: ErrorCode.NOT_ACCEPTABLE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
}

JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
_response_media_type: ContextVar[str] = ContextVar("shopfront_response_media_type", default=JSON)


def negotiate(accept: str | None) -> str:
    """The media type of the answer (GraphQL over HTTP): ``application/graphql-response+json``
    when the Accept header ranks it at least as high as ``application/json``; otherwise (no
    Accept, ``*/*``, legacy clients) ``application/json``."""
    if not accept:
        return JSON
    quality: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        quality[media] = max(quality.get(media, 0.0), q)
    preferred = quality.get(GRAPHQL_RESPONSE_JSON, 0.0)
    return GRAPHQL_RESPONSE_JSON if preferred > 0 and preferred >= quality.get(JSON, 0.0) else JSON


# Codes of errors in a document or its variables, found before execution (schema.limits).
REQUEST_ERROR_CODES = frozenset(
    {
        ErrorCode.GRAPHQL_PARSE_FAILED.value,
        ErrorCode.GRAPHQL_VALIDATION_FAILED.value,
        ErrorCode.BAD_USER_INPUT.value,
        ErrorCode.TOO_MANY_TOKENS.value,
        ErrorCode.QUERY_TOO_DEEP.value,
        ErrorCode.TOO_MANY_ALIASES.value,
        ErrorCode.QUERY_TOO_COSTLY.value,
    }
)


def is_request_error(result: Mapping[str, Any]) -> bool:
    """Whether a result is a GraphQL request error: the document could not be parsed or
    validated, or its variables did not fit (no data, and no error pointing into a
    response ``path``)."""
    errors = result.get("errors") or []
    return (
        result.get("data") is None
        and bool(errors)
        and all(
            isinstance(e, dict)
            and not e.get("path")
            and (e.get("extensions") or {}).get("code") in REQUEST_ERROR_CODES
            for e in errors
        )
    )


_REQUEST_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def request_id_for(request: Request | WebSocket | Mapping[str, str]) -> str:
    """The caller's X-Request-ID when it is sane, else a fresh one."""
    headers = request.headers if isinstance(request, Request | WebSocket) else request
    given = headers.get("x-request-id", "")
    if 1 <= len(given) <= 64 and set(given) <= _REQUEST_ID_CHARS:
        return given
    return uuid.uuid4().hex


def error_body(
    code: ErrorCode, message: str, request_id: str, *, with_data: bool = True, **extra: Any
) -> dict[str, Any]:
    """A GraphQL-shaped error response for requests refused before GraphQL ran (``data``
    left out when ``with_data`` is false, as the GraphQL spec has it for request errors)."""
    extensions = {"code": code.value, "requestId": request_id, **extra}
    body: dict[str, Any] = {"errors": [{"message": message, "extensions": extensions}]}
    return {"data": None, **body} if with_data else body


class _BodyTooLarge(Exception):
    pass


def _may_be_batch(body: bytes) -> bool:
    """Whether ``body`` may hold a JSON array, in any encoding `json.loads` accepts (UTF-8
    with or without a byte-order mark, UTF-16, UTF-32), so none slips past the batch check."""
    if not body:
        return False
    try:  # the whole body (bounded by max_body_bytes): JSON allows any leading whitespace
        text = body.decode(json.detect_encoding(body), errors="ignore")
    except LookupError:
        return True
    return text.lstrip("\ufeff \t\r\n")[:1] == "["


GRAPHIQL_ASSETS = "/graphiql-assets"  # where the vendored GraphiQL files are served
_GRAPHIQL_FOLDER = ("shopfront", "static/graphiql")  # package data, shipped in the wheel


def graphiql_assets() -> StaticFiles:
    # An editable install (setuptools strict mode) links each file from a link tree.
    return StaticFiles(packages=[_GRAPHIQL_FOLDER], follow_symlink=True)


def graphiql_page() -> str:
    """GraphiQL's page with every asset served locally (strawberry's loads them from a CDN,
    which leaves the page at "Loading..." without internet access)."""
    from importlib.resources import files

    page = files(_GRAPHIQL_FOLDER[0]).joinpath(_GRAPHIQL_FOLDER[1], "index.html").read_text()
    return page.replace("{assets}", GRAPHIQL_ASSETS)


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
        self.addresses = ClientAddresses.of(settings.trusted_proxies)

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
            client=self.addresses.resolve(client[0] if client else None, headers),
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
        media_type = _response_media_type.set(negotiate(headers.get("accept")))
        try:
            with bind_request(info):
                refusal, replay = await self._screen(scope, receive, headers, info)
                if refusal is None:
                    try:
                        response = await self.run(Request(scope, replay))
                    except HTTPException as exc:
                        # strawberry answers these in plain text; clients expect GraphQL JSON.
                        response = self._http_error(exc.status_code, exc.reason, info)
                    await response(scope, replay, send_tracking)
                else:
                    await refusal(scope, receive, send_tracking)
        finally:
            _response_media_type.reset(media_type)
            if metrics is not None:
                metrics.http_in_flight.dec()
                metrics.http_requests.labels("/graphql", str(status)).inc()
                for part in info.degraded:
                    metrics.degraded.labels(part.label, part.cause).inc()
            log_request(info, status, log_pii=self.settings.log_pii)

    async def _screen(
        self, scope: Scope, receive: Receive, headers: Mapping[str, str], info: RequestInfo
    ) -> tuple[Response | None, Receive]:
        """Check the content type, read the body within its limit, count operations, charge
        the address bucket. Returns a refusal response, or None and a ``receive`` that
        replays the body."""
        if scope.get("method") == "POST":
            given = headers.get("content-type", "")
            if given.split(";")[0].strip().lower() != JSON:
                return self._refuse(
                    415,
                    ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                    "send GraphQL requests as JSON (Content-Type: application/json), not "
                    + (repr(given) if given else "without a content type"),
                    info,
                    request_error=True,
                ), receive
        limit = self.settings.max_body_bytes
        try:
            body = await self._read_body(receive, headers, limit)
        except _BodyTooLarge:
            return self._refuse(
                413,
                ErrorCode.BODY_TOO_LARGE,
                f"the request body is larger than {limit} bytes",
                info,
                limit=limit,
            ), receive
        operations = 1
        if _may_be_batch(body):
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
                        ErrorCode.TOO_MANY_OPERATIONS,
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
                    ErrorCode.RATE_LIMITED,
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
        code: ErrorCode,
        message: str,
        info: RequestInfo,
        *,
        retry_after: int | None = None,
        request_error: bool = False,
        **extra: Any,
    ) -> Response:
        info.error_codes.append(code.value)
        if self.metrics is not None:
            self.metrics.http_rejected.labels(code.value).inc()
        if retry_after is not None:
            extra["retryAfter"] = retry_after
        headers = {"retry-after": str(retry_after)} if retry_after is not None else None
        body = error_body(code, message, info.request_id, with_data=not request_error, **extra)
        return JSONResponse(body, status, headers=headers, media_type=_response_media_type.get())

    def _http_error(self, status: int, reason: str, info: RequestInfo) -> Response:
        code = _CODE_FOR_HTTP_STATUS.get(status, ErrorCode.BAD_REQUEST)
        response = self._refuse(status, code, reason, info, request_error=True)
        if status == 405:
            response.headers["allow"] = "GET, POST"
        return response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        """Answers 429/503 with Retry-After when an operation was refused for load; follows
        GraphQL over HTTP for results that failed before execution (no ``data`` entry, and
        status 400 under ``application/graphql-response+json``)."""
        media_type = _response_media_type.get()
        results = response_data if isinstance(response_data, list) else [response_data]
        request_errors = [is_request_error(r) for r in results]
        for result, failed in zip(results, request_errors, strict=True):
            if failed:
                result.pop("data", None)
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = f"{media_type}; charset=utf-8"
        if (
            media_type == GRAPHQL_RESPONSE_JSON
            and not isinstance(response_data, list)
            and request_errors[0]
            and response.status_code == 200
        ):
            response.status_code = 400
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

    @property
    def graphql_ide_html(self) -> str:
        return graphiql_page()

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


# What a browser storefront may send: its key, the shopper's token, a request id to correlate.
CORS_HEADERS = ("Authorization", "Content-Type", "X-Shopper-Token", "X-Request-ID")


def cors_middleware(settings: Settings) -> Middleware:
    """CORS for browser storefronts: only the origins in ``SHOPFRONT_CORS_ORIGINS`` (none by
    default), never with credentials (keys and tokens travel in headers, not cookies); a
    preflight from any other origin is refused."""
    exact, pattern = cors_origin_patterns(settings.cors_origins)
    return Middleware(
        CORSMiddleware,
        allow_origins=exact,
        allow_origin_regex=pattern,
        allow_methods=["GET", "POST"],
        allow_headers=list(CORS_HEADERS),
        allow_credentials=False,
        expose_headers=["X-Request-ID", "Retry-After"],
        max_age=600,
    )


def create_app(
    settings: Settings,
    *,
    demo: bool = False,
    database: str | None = None,
    plugins: Sequence[tuple[str, object]] = (),
    plugin_config: ConfigFile | None = None,
    profiles: ProfileSource | None = None,
    command_listeners: Sequence[Any] = (),
) -> Starlette:
    """The Shopfront ASGI app. ``settings.mongodb_uri`` must name a reachable server
    (`shopfront serve` starts the embedded one first when none is configured).

    ``demo`` makes ``/`` redirect to GraphiQL at ``/graphql`` (else ``/`` answers a JSON
    index of the endpoints); ``plugins`` are (name, plugin object) pairs registered after
    the built-ins;
    ``plugin_config`` replaces the ``SHOPFRONT_CONFIG`` file; ``profiles`` is the shopper
    profile source (default: every shopper served without a profile); ``command_listeners``
    are extra driver command listeners on the app's client (tests watch its queries)."""
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
            listeners=[CommandTimer(metrics.observe_db_command), *command_listeners],
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

    endpoints = {
        "/graphql": "GraphQL over HTTP (POST; GET for queries"
        + ("; GraphiQL in a browser)" if settings.introspection_enabled else ")"),
        "/livez": "liveness: the process answers",
        "/readyz": "readiness: database reachable, models loaded, not draining",
        "/console": "the merchant console (a browser; sign in with a merchant key)",
    }
    if settings.metrics_enabled:
        endpoints["/metrics"] = "Prometheus metrics"

    async def index(request: Request) -> Response:
        if demo:
            return RedirectResponse("/graphql", status_code=307)
        return JSONResponse({"service": "shopfront", "endpoints": endpoints})

    routes: list[BaseRoute] = [
        Route("/", index),
        Route("/livez", livez),
        Route("/readyz", readyz),
        Route("/graphql", graphql),  # every method, so others get a GraphQL-shaped 405
        *console_routes(),
    ]
    if settings.metrics_enabled:
        routes.append(Route("/metrics", metrics_endpoint))
    if settings.introspection_enabled:
        routes.append(Mount(GRAPHIQL_ASSETS, graphiql_assets(), name="graphiql"))
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[cors_middleware(settings)])
    app.state.metrics = metrics
    return app
