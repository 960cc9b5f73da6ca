"""Error codes and masking. Errors a client caused carry ``extensions.code`` and their own
message; anything else is an internal error, shown as a generic message with the request id
(production) while the details go to the log.

`ErrorCode` is the one list of codes a top-level error may carry: every error the service
raises takes its code from it (``tests/schema/test_error_codes.py`` checks the source), and
it is published in the SDL as the ``ErrorCode`` enum so clients can switch on it.

Two kinds of non-client errors are not bugs and are never masked as internal, in any
environment, because the caller can act on them:

- the database is unreachable, slow or restarting (`shopfront.platform.store.is_unavailable`): code
  ``SERVICE_UNAVAILABLE``, "try again shortly" — merchant writes fail fast with it;
- an admission gate is full (`shopfront.platform.admission.Overloaded`): code ``OVERLOADED`` with
  ``retryAfter`` seconds; the HTTP layer answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any, cast

import strawberry
from graphql import GraphQLError
from shopfront.platform.admission import Overloaded
from shopfront.platform.store import is_unavailable
from strawberry.extensions import MaskErrors

log = logging.getLogger("shopfront.graphql")


def _code(name: str, description: str) -> str:
    # strawberry.enum unwraps the definition into the plain string value (and keeps the
    # description for the SDL); typed as the string it becomes.
    return cast(str, strawberry.enum_value(name, description=description))


@strawberry.enum(
    description="The `extensions.code` of a top-level error: what went wrong with the request "
    "as a whole. Outcomes of one item (a rejected event, a refused coupon) are fields of the "
    "payload instead, never errors."
)
class ErrorCode(Enum):
    # authentication and authorization
    UNAUTHENTICATED = _code(
        "UNAUTHENTICATED", description="No API key, or an unknown or revoked one."
    )
    FORBIDDEN = _code(
        "FORBIDDEN", description="The key's role may not call this field or use this argument."
    )
    # malformed or refused input
    GRAPHQL_PARSE_FAILED = _code(
        "GRAPHQL_PARSE_FAILED", description="The document is not valid GraphQL syntax."
    )
    GRAPHQL_VALIDATION_FAILED = _code(
        "GRAPHQL_VALIDATION_FAILED",
        description="The document does not match the schema (unknown field, wrong type, ...).",
    )
    BAD_USER_INPUT = _code(
        "BAD_USER_INPUT",
        description="An argument is malformed or out of range; the message names it.",
    )
    NOT_FOUND = _code(
        "NOT_FOUND",
        description="The object the mutation acts on does not exist (or, over HTTP, the path).",
    )
    CONFLICT = _code(
        "CONFLICT",
        description="The object's state does not allow the change (e.g. an "
        "experiment that would overlap a running one).",
    )
    PRODUCT_NOT_FOUND = _code(
        "PRODUCT_NOT_FOUND",
        description="A PRODUCT page names a productId the catalog does not have.",
    )
    POST_REQUIRED = _code(
        "POST_REQUIRED",
        description="The field has side effects (storefront) and is served over POST only.",
    )
    NOT_CONFIGURED = _code(
        "NOT_CONFIGURED",
        description="The feature needs a setting the service was started without "
        "(e.g. SHOPFRONT_SHOPPER_TOKEN_SECRETS for createShopperToken).",
    )
    USER_ERASED = _code(
        "USER_ERASED", description="The shopper was erased; nothing more is stored about them."
    )
    CONSENT_WITHHELD = _code(
        "CONSENT_WITHHELD",
        description="The shopper withheld personalization consent, which this call needs.",
    )
    IDEMPOTENCY_KEY_REUSED = _code(
        "IDEMPOTENCY_KEY_REUSED",
        description="The idempotency key was used before for a different request.",
    )
    # the HTTP request itself (GraphQL over HTTP)
    BAD_REQUEST = _code(
        "BAD_REQUEST", description="The HTTP request is not a GraphQL request (HTTP 400)."
    )
    METHOD_NOT_ALLOWED = _code(
        "METHOD_NOT_ALLOWED",
        description="Only GET (queries) and POST reach /graphql (HTTP 405, with Allow).",
    )
    NOT_ACCEPTABLE = _code(
        "NOT_ACCEPTABLE",
        description="The Accept header allows no media type the service answers in (HTTP 406).",
    )
    UNSUPPORTED_MEDIA_TYPE = _code(
        "UNSUPPORTED_MEDIA_TYPE",
        description="A POST body that is not application/json (HTTP 415).",
    )
    # limits
    BODY_TOO_LARGE = _code(
        "BODY_TOO_LARGE", description="The HTTP body is over the size limit (HTTP 413)."
    )
    TOO_MANY_OPERATIONS = _code(
        "TOO_MANY_OPERATIONS", description="A batch holds more operations than allowed."
    )
    TOO_MANY_TOKENS = _code(
        "TOO_MANY_TOKENS", description="The document has more tokens than allowed."
    )
    QUERY_TOO_DEEP = _code(
        "QUERY_TOO_DEEP", description="The operation is nested deeper than allowed."
    )
    TOO_MANY_ALIASES = _code(
        "TOO_MANY_ALIASES", description="The operation uses more aliases than allowed."
    )
    QUERY_TOO_COSTLY = _code(
        "QUERY_TOO_COSTLY",
        description="The operation's estimated cost is over the limit (ask for smaller pages).",
    )
    RATE_LIMITED = _code(
        "RATE_LIMITED",
        description="Too many requests from this key or address; retry after `retryAfter` "
        "seconds (HTTP 429).",
    )
    OVERLOADED = _code(
        "OVERLOADED",
        description="The service is at capacity; retry after `retryAfter` seconds (HTTP 503).",
    )
    # the service
    SERVICE_UNAVAILABLE = _code(
        "SERVICE_UNAVAILABLE",
        description="The database or a needed component is unavailable; try again shortly.",
    )
    INTERNAL_SERVER_ERROR = _code(
        "INTERNAL_SERVER_ERROR",
        description="A bug; the message carries the request id to find it in the logs.",
    )


# Codes the HTTP layer answers with a status other than 200 (and a Retry-After header).
HTTP_STATUS_FOR_CODE = {ErrorCode.RATE_LIMITED.value: 429, ErrorCode.OVERLOADED.value: 503}

UNAVAILABLE_MESSAGE = "the database is unavailable or too slow right now; try again shortly"


def coded_error(message: str, code: ErrorCode, *nodes: Any, **extra: Any) -> GraphQLError:
    """A top-level error with ``extensions.code`` (and any ``extra`` extensions)."""
    return GraphQLError(message, list(nodes) or None, extensions={"code": code.value, **extra})


def user_error(
    message: str, code: ErrorCode = ErrorCode.BAD_USER_INPUT, **extra: Any
) -> GraphQLError:
    return coded_error(message, code, **extra)


def set_code(error: GraphQLError, code: ErrorCode) -> None:
    """Give ``error`` a code unless it has one (validation and parse errors come without)."""
    extensions = dict(error.extensions or {})
    extensions.setdefault("code", code.value)
    error.extensions = extensions


def unavailable_error(request_id: str, message: str = UNAVAILABLE_MESSAGE) -> GraphQLError:
    return coded_error(message, ErrorCode.SERVICE_UNAVAILABLE, requestId=request_id)


def is_internal(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


def _classified(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and (isinstance(original, Overloaded) or is_unavailable(original))


class MaskInternalErrors(MaskErrors):
    """Masks internal errors (when ``mask``) and always logs them with the request id;
    turns database-availability and overload errors into their codes (always)."""

    def __init__(self, mask: bool) -> None:
        super().__init__(should_mask_error=self._should_mask, error_message="Internal error.")
        self.mask = mask

    def _request_id(self) -> str:
        ctx = getattr(self.execution_context, "context", None)
        return str(getattr(ctx, "request_id", "-"))

    def _should_mask(self, error: GraphQLError) -> bool:
        if not is_internal(error):
            return False
        where = ".".join(map(str, error.path or [])) or "operation"
        if _classified(error):
            log.warning(
                "%s in %s (request %s): %s",
                type(error.original_error).__name__,
                where,
                self._request_id(),
                error.original_error,
            )
            return True
        log.error(
            "internal error in %s (request %s)",
            where,
            self._request_id(),
            exc_info=error.original_error,
        )
        return self.mask

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        rid = self._request_id()
        original = error.original_error
        if isinstance(original, Overloaded):
            message = str(original)
            extensions: dict[str, Any] = {
                "code": ErrorCode.OVERLOADED.value,
                "retryAfter": original.retry_after_s,
                "requestId": rid,
            }
        elif original is not None and is_unavailable(original):
            message = UNAVAILABLE_MESSAGE
            extensions = {"code": ErrorCode.SERVICE_UNAVAILABLE.value, "requestId": rid}
        else:
            message = f"Internal error (request id {rid})."
            extensions = {"code": ErrorCode.INTERNAL_SERVER_ERROR.value, "requestId": rid}
        return GraphQLError(
            message=message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions=extensions,
        )
