"""The request gate: runs after a document is parsed and validated, before any resolver.

It is the first code of a request that may touch the database, so a document refused by the
limits (schema/limits.py) never costs a database call. In order, for each operation:

1. authenticate the ``Authorization: Bearer`` key (once per HTTP request, batches included);
   when the database is unreachable, a key verified recently still works (service/keycache);
2. take a token from the key's rate-limit bucket (``RATE_LIMITED``, HTTP 429);
3. refuse mutations at once with ``SERVICE_UNAVAILABLE`` while the readiness monitor knows the
   database is down, so writers fail fast instead of waiting for a deadline.

A refusal becomes the operation's result; the resolvers do not run.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from shopfront.platform import keys as auth
from shopfront.platform.health import health_of
from shopfront.platform.keycache import KeyCache
from shopfront.platform.logs import current_request
from shopfront.platform.metrics import metrics_of
from shopfront.platform.ratelimit import RateLimited
from shopfront.platform.store import is_unavailable
from shopfront.schema.context import Context
from shopfront.schema.errors import INTERNAL, RATE_LIMITED, unavailable_error
from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

log = logging.getLogger("shopfront.auth")

_AUTHENTICATED = "_authenticated"  # marker in Context.loaders: the key was looked up
KEY_STORE_UNAVAILABLE = "the key store is unavailable; try again shortly"


def bearer_token(request: Request | WebSocket) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def rate_limited_error(exc: RateLimited, request_id: str) -> GraphQLError:
    return GraphQLError(
        str(exc),
        extensions={
            "code": RATE_LIMITED,
            "retryAfter": exc.retry_after_header,
            "requestId": request_id,
        },
    )


async def authenticate(ctx: Context) -> GraphQLError | None:
    """Resolve ``ctx.principal`` from the request's key, or say why the request cannot go on.

    An unknown or revoked key is not an error here: ``ctx.auth_problem`` is set and each
    field's permission answers UNAUTHENTICATED, so public fields (if any) still work.
    """
    if ctx.principal is not None or ctx.request is None or ctx.loaders.get(_AUTHENTICATED):
        return None
    token = bearer_token(ctx.request)
    if token is None:
        ctx.loaders[_AUTHENTICATED] = True
        return None
    runtime = ctx.runtime
    cache = runtime.key_cache
    health = health_of(runtime)
    principal = None
    if health is not None and not health.database_up:
        principal = cache.recall(token) if isinstance(cache, KeyCache) else None
        if principal is None:
            return unavailable_error(ctx.request_id, KEY_STORE_UNAVAILABLE)
    else:
        try:
            principal = await auth.authenticate(runtime.store, token, runtime.api_keys)
        except Exception as exc:
            if not is_unavailable(exc):
                log.exception("key lookup failed (request %s)", ctx.request_id)
                return GraphQLError(
                    f"Internal error (request id {ctx.request_id}).",
                    extensions={"code": INTERNAL, "requestId": ctx.request_id},
                )
            principal = cache.recall(token) if isinstance(cache, KeyCache) else None
            if principal is None:
                log.warning("key lookup failed, database unavailable: %s", exc)
                return unavailable_error(ctx.request_id, KEY_STORE_UNAVAILABLE)
        else:
            if isinstance(cache, KeyCache):
                if principal is None:
                    cache.forget(token)
                else:
                    cache.remember(token, principal)
    ctx.loaders[_AUTHENTICATED] = True
    if principal is None:
        ctx.auth_problem = "unknown or revoked API key"
        return None
    ctx.principal = principal
    info = current_request()
    if info is not None:
        info.key_name = principal.name
        info.role = principal.role.value
    return None


class RequestGate(SchemaExtension):
    """Authentication, per-key rate limit and fail-fast writes (see module doc)."""

    async def on_execute(self) -> AsyncIterator[None]:
        ec = self.execution_context
        ctx = ec.context
        if isinstance(ctx, Context) and ec.result is None:
            error = await self._admit(ctx, ec.operation_type)
            if error is not None:
                ec.result = GraphQLExecutionResult(data=None, errors=[error])
        yield

    async def _admit(self, ctx: Context, operation: OperationType) -> GraphQLError | None:
        problem = await authenticate(ctx)
        if problem is not None:
            return problem
        runtime = ctx.runtime
        limiter = runtime.limiter
        if ctx.principal is not None and limiter is not None:
            try:
                limiter.check_key(ctx.principal.id, ctx.principal.role)
            except RateLimited as exc:
                metrics = metrics_of(runtime)
                if metrics is not None:
                    metrics.rate_limited.labels(exc.bucket).inc()
                return rate_limited_error(exc, ctx.request_id)
        health = health_of(runtime)
        if operation is OperationType.MUTATION and health is not None and not health.database_up:
            return unavailable_error(ctx.request_id)
        return None
