"""The request gate: runs after a document is parsed and validated, before any resolver.

It is the first code of a request that may touch the database, so a document refused by the
limits (schema/limits.py) never costs a database call. In order, for each operation:

1. authenticate the ``Authorization: Bearer`` key (once per HTTP request, batches included);
   when the database is unreachable, a key verified recently still works (service/keycache);
2. verify the ``X-Shopper-Token`` (shopfront.shoppers.identity), if one was sent, into
   ``Context.shopper``; each field about a shopper decides what it needs (schema/permissions);
3. charge the rate-limit buckets in proportion to the operation's estimated cost: the key's
   (per client address for a storefront key), the client address's (the rest of the cost:
   the HTTP layer took one token per operation) and, for a storefront key, each shopper or
   session the operation names or its shopper token carries (``RATE_LIMITED``, HTTP 429);
4. refuse mutations at once with ``SERVICE_UNAVAILABLE`` while the readiness monitor knows the
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
from shopfront.schema.errors import ErrorCode, coded_error, unavailable_error
from shopfront.schema.limits import Charge, Limits, operation_charge
from shopfront.shoppers.identity import HEADER as SHOPPER_TOKEN_HEADER
from shopfront.shoppers.identity import ShopperTokens, TokenError
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
    return coded_error(
        str(exc),
        ErrorCode.RATE_LIMITED,
        retryAfter=exc.retry_after_header,
        requestId=request_id,
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
                return coded_error(
                    f"Internal error (request id {ctx.request_id}).",
                    ErrorCode.INTERNAL_SERVER_ERROR,
                    requestId=ctx.request_id,
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
        ctx.auth_problem = "unknown or revoked API key: send Authorization: Bearer <an active key>"
        return None
    ctx.principal = principal
    info = current_request()
    if info is not None:
        info.key_name = principal.name
        info.role = principal.role.value
    return None


def shopper_tokens(ctx: Context) -> ShopperTokens:
    """The runtime's token signer/verifier, made from the settings on first use."""
    tokens = ctx.runtime.shopper_tokens
    if tokens is None:
        tokens = ctx.runtime.shopper_tokens = ShopperTokens.from_settings(ctx.runtime.settings)
    return tokens


def read_shopper_token(ctx: Context) -> None:
    """Verify the request's ``X-Shopper-Token`` into ``ctx.shopper``; a token that cannot be
    used sets ``ctx.shopper_problem`` instead (fields about a shopper then answer
    UNAUTHENTICATED with it)."""
    if ctx.request is None or ctx.shopper is not None or ctx.shopper_problem is not None:
        return
    token = ctx.request.headers.get(SHOPPER_TOKEN_HEADER, "").strip()
    if not token:
        return
    try:
        ctx.shopper = shopper_tokens(ctx).verify(token)
    except TokenError as exc:
        ctx.shopper_problem = str(exc)


class RequestGate(SchemaExtension):
    """Authentication, per-key rate limit and fail-fast writes (see module doc)."""

    async def on_execute(self) -> AsyncIterator[None]:
        ec = self.execution_context
        ctx = ec.context
        if isinstance(ctx, Context) and ec.result is None:
            error = await self._admit(ctx, ec.operation_type, self._charge(ctx))
            if error is not None:
                ec.result = GraphQLExecutionResult(data=None, errors=[error])
        yield

    def _charge(self, ctx: Context) -> Charge:
        ec = self.execution_context
        if ec.graphql_document is None:
            return Charge(0, ())
        return operation_charge(
            ec.schema._schema,
            ec.graphql_document,
            ec.operation_name,
            ec.variables,
            Limits.from_settings(ctx.runtime.settings),
        )

    async def _admit(
        self, ctx: Context, operation: OperationType, charge: Charge
    ) -> GraphQLError | None:
        problem = await authenticate(ctx)
        if problem is not None:
            return problem
        read_shopper_token(ctx)
        runtime = ctx.runtime
        limiter = runtime.limiter
        if ctx.principal is not None and limiter is not None:
            info = current_request()
            address = info.client if info is not None else None
            tokens = limiter.tokens(charge.cost)
            try:
                limiter.check_key(ctx.principal.id, ctx.principal.role, tokens, address=address)
                limiter.check_address(address, tokens - 1)
                if ctx.principal.role is auth.Role.STOREFRONT:
                    shoppers = charge.shoppers
                    if ctx.shopper is not None:  # the token's shopper, named or not
                        shoppers = tuple(dict.fromkeys((*shoppers, ctx.shopper.user_id)))
                    limiter.check_shoppers(ctx.principal.id, shoppers, tokens)
            except RateLimited as exc:
                metrics = metrics_of(runtime)
                if metrics is not None:
                    metrics.rate_limited.labels(exc.bucket).inc()
                return rate_limited_error(exc, ctx.request_id)
        health = health_of(runtime)
        if operation is OperationType.MUTATION and health is not None and not health.database_up:
            return unavailable_error(ctx.request_id)
        return None
