"""Error codes and masking. Errors a client caused carry ``extensions.code`` and their own
message; anything else is an internal error, shown as a generic message with the request id
(production) while the details go to the log."""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

log = logging.getLogger("shopfront.graphql")

BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL = "INTERNAL_SERVER_ERROR"
UNAVAILABLE = "SERVICE_UNAVAILABLE"


def user_error(message: str, code: str = BAD_USER_INPUT, **extra: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extra})


def is_internal(error: GraphQLError) -> bool:
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


class MaskInternalErrors(MaskErrors):
    """Masks internal errors (when ``mask``) and always logs them with the request id."""

    def __init__(self, mask: bool) -> None:
        super().__init__(should_mask_error=self._should_mask, error_message="Internal error.")
        self.mask = mask

    def _request_id(self) -> str:
        ctx = getattr(self.execution_context, "context", None)
        return str(getattr(ctx, "request_id", "-"))

    def _should_mask(self, error: GraphQLError) -> bool:
        if not is_internal(error):
            return False
        log.error(
            "internal error in %s (request %s)",
            ".".join(map(str, error.path or [])) or "operation",
            self._request_id(),
            exc_info=error.original_error,
        )
        return self.mask

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        rid = self._request_id()
        return GraphQLError(
            message=f"Internal error (request id {rid}).",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions={"code": INTERNAL, "requestId": rid},
        )
