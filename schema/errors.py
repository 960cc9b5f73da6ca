"""Error codes and masking. Errors a client caused carry ``extensions.code`` and their own
message; anything else is an internal error, shown as a generic message with the request id
(production) while the details go to the log.

Two kinds of non-client errors are not bugs and are never masked as internal, in any
environment, because the caller can act on them:

- the database is unreachable, slow or restarting (`shopfront.platform.store.is_unavailable`): code
  ``SERVICE_UNAVAILABLE``, "try again shortly" — merchant writes fail fast with it;
- an admission gate is full (`shopfront.platform.admission.Overloaded`): code ``OVERLOADED`` with
  ``retryAfter`` seconds; the HTTP layer answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError
from shopfront.platform.admission import Overloaded
from shopfront.platform.store import is_unavailable
from strawberry.extensions import MaskErrors

log = logging.getLogger("shopfront.graphql")

BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL = "INTERNAL_SERVER_ERROR"
UNAVAILABLE = "SERVICE_UNAVAILABLE"
OVERLOADED = "OVERLOADED"
RATE_LIMITED = "RATE_LIMITED"

# Codes the HTTP layer answers with a status other than 200 (and a Retry-After header).
HTTP_STATUS_FOR_CODE = {RATE_LIMITED: 429, OVERLOADED: 503}

UNAVAILABLE_MESSAGE = "the database is unavailable or too slow right now; try again shortly"


def user_error(message: str, code: str = BAD_USER_INPUT, **extra: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extra})


def unavailable_error(request_id: str, message: str = UNAVAILABLE_MESSAGE) -> GraphQLError:
    return GraphQLError(message, extensions={"code": UNAVAILABLE, "requestId": request_id})


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
                "code": OVERLOADED,
                "retryAfter": original.retry_after_s,
                "requestId": rid,
            }
        elif original is not None and is_unavailable(original):
            message = UNAVAILABLE_MESSAGE
            extensions = {"code": UNAVAILABLE, "requestId": rid}
        else:
            message = f"Internal error (request id {rid})."
            extensions = {"code": INTERNAL, "requestId": rid}
        return GraphQLError(
            message=message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions=extensions,
        )
