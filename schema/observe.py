"""Per-operation metrics and log fields.

`OperationObserver` must be the first schema extension: strawberry leaves extensions in
reverse order, so the first one sees each operation's final errors (after masking and
error codes) when it records them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from graphql import GraphQLError
from shopfront.platform.logs import current_request
from shopfront.platform.metrics import metrics_of
from strawberry.extensions import SchemaExtension


def _outcome(data: object, errors: list[GraphQLError]) -> str:
    if not errors:
        return "ok"
    if data is None and all(e.path is None for e in errors):
        return "rejected"  # refused before any resolver ran
    return "error"


class OperationObserver(SchemaExtension):
    """Counts and times each operation by (bounded) name, type and outcome."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        ec = self.execution_context
        runtime = getattr(ec.context, "runtime", None)
        metrics = metrics_of(runtime) if runtime is not None else None
        try:
            op_type = ec.operation_type.value
        except Exception:  # no document (parse error): the type is unknown
            op_type = "unknown"
        result = ec.result
        errors: list[GraphQLError] = list(getattr(result, "errors", None) or [])
        codes = [str((e.extensions or {}).get("code", "UNKNOWN")) for e in errors]
        info = current_request()
        name = metrics.operation_names.label(ec.operation_name) if metrics else None
        if info is not None:
            info.operations.append(name or ec.operation_name or "anonymous")
            info.error_codes.extend(codes)
        if metrics is None or name is None:
            return
        outcome = _outcome(getattr(result, "data", None), errors)
        metrics.graphql_operations.labels(name, op_type, outcome).inc()
        metrics.graphql_duration.labels(name, op_type).observe(elapsed)
        for code in codes:
            metrics.graphql_errors.labels(code).inc()
