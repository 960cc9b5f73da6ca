"""Which database errors count as "unavailable" (SERVICE_UNAVAILABLE, retry later)."""

from __future__ import annotations

import pytest
from shopfront.platform.store import (
    ConnectionFailure,
    DatabaseUnavailable,
    ExecutionTimeout,
    OperationFailure,
    is_unavailable,
)


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionFailure("connection refused"),
        ExecutionTimeout("operation exceeded time limit", code=50),
        DatabaseUnavailable("no answer"),
        OperationFailure("host unreachable", code=6),
        OperationFailure("shutdown in progress", code=91),
        OperationFailure("not primary", code=10107),
        OperationFailure("retry me", code=12345, details={"errorLabels": ["RetryableWriteError"]}),
    ],
    ids=lambda e: type(e).__name__ + str(getattr(e, "code", "")),
)
def test_unavailable(exc: BaseException) -> None:
    assert is_unavailable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        OperationFailure("bad value", code=2),
        OperationFailure("duplicate key", code=11000),
        RuntimeError("a bug"),
        ValueError("bad input"),
    ],
    ids=lambda e: type(e).__name__ + str(getattr(e, "code", "")),
)
def test_not_unavailable(exc: BaseException) -> None:
    assert not is_unavailable(exc)
