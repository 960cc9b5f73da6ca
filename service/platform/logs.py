"""Structured logs: one JSON object per line, tagged with the request being served.

The HTTP layer binds a `RequestInfo` for each request (a context variable, so it follows the
request into every task it starts). Any log record emitted while it is bound carries the
request id; the request's own summary line adds the operation, the API key's *name* (never the
key), the duration and the parts of the answer that were degraded. Code anywhere in a request
calls ``mark_degraded("trending", "timeout after 200 ms", cause="timeout")`` to have that part
named, with its reason, in the summary and counted in the ``shopfront_degraded_parts`` metric
(labelled by strategy and cause).

Personal data stays out of logs unless ``SHOPFRONT_LOG_PII=true``: the summary line carries
the client address only then, and code that names a shopper in a message passes the id
through `shopper_ref`, which gives a hash salted per process (lines of one process can be
correlated; the id cannot be recovered or matched across restarts).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

# Attributes of a LogRecord that are not caller-supplied ``extra`` fields.
# uvicorn's ``color_message`` repeats the message with terminal colours.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}
)


@dataclass(frozen=True)
class DegradedPart:
    """One part left out of an answer (or served from a fallback).

    ``strategy`` names the part (a strategy, ``<hook>:<plugin>``, ``profile``, ``database``);
    ``reason`` says why in words; ``cause`` is the reason's fixed kind (``timeout``, ``error``,
    ``not loaded``, ...) and ``label`` the strategy as the metric names it: the metric's labels
    stay a small, fixed set even when a reason carries details or a client names a strategy
    that does not exist.
    """

    strategy: str
    reason: str
    cause: str
    label: str

    def as_log(self) -> dict[str, str]:
        return {"strategy": self.strategy, "reason": self.reason}


@dataclass
class RequestInfo:
    """What the summary line of one request reports; filled in as the request proceeds."""

    request_id: str
    method: str = ""
    path: str = ""
    client: str | None = None
    started: float = field(default_factory=time.perf_counter)
    operations: list[str] = field(default_factory=list)
    key_name: str | None = None
    role: str | None = None
    degraded: list[DegradedPart] = field(default_factory=list)
    error_codes: list[str] = field(default_factory=list)

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 2)


_current: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "shopfront_request", default=None
)


def current_request() -> RequestInfo | None:
    """The request being served in this task, if any."""
    return _current.get()


@contextmanager
def bind_request(info: RequestInfo) -> Iterator[RequestInfo]:
    token = _current.set(info)
    try:
        yield info
    finally:
        _current.reset(token)


def mark_degraded(
    part: str, reason: str = "", *, cause: str | None = None, label: str | None = None
) -> None:
    """Record that ``part`` of the current answer was left out or served from a fallback, and
    why (see `DegradedPart`; ``cause`` defaults to ``reason``, ``label`` to ``part``). The same
    part and reason are recorded once; outside a request this does nothing."""
    info = _current.get()
    if info is None:
        return
    entry = DegradedPart(part, reason, cause if cause is not None else reason, label or part)
    if not any(d.strategy == part and d.reason == reason for d in info.degraded):
        info.degraded.append(entry)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, the current request
    id, any ``extra`` fields, and the traceback (as text) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        info = _current.get()
        if info is not None:
            out["request_id"] = info.request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines with the request id, for `SHOPFRONT_LOG_FORMAT=text`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        info = _current.get()
        return f"{line} [request {info.request_id}]" if info is not None else line


def configure_logging(
    level: str = "INFO", fmt: Literal["json", "text"] = "json", stream: Any = None
) -> logging.Handler:
    """Send every logger (uvicorn's included) through one handler on stderr in ``fmt``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    return handler


request_log = logging.getLogger("shopfront.request")
_SALT = secrets.token_bytes(16)


def shopper_ref(value: str | None, log_pii: bool) -> str:
    """How a log line names a shopper or session id: the id itself with ``log_pii``, else a
    short hash salted per process."""
    if value is None:
        return "-"
    if log_pii:
        return value
    return "id:" + hashlib.blake2b(value.encode(), key=_SALT, digest_size=6).hexdigest()


def log_request(info: RequestInfo, status: int, *, log_pii: bool = False) -> None:
    """The one summary line per HTTP request (the client address only with ``log_pii``)."""
    level = logging.ERROR if status >= 500 else logging.INFO
    request_log.log(
        level,
        "%s %s %s",
        info.method,
        info.path,
        status,
        extra={
            "request_id": info.request_id,
            "status": status,
            "duration_ms": info.elapsed_ms(),
            "operation": ",".join(info.operations) or None,
            "key_name": info.key_name,
            "role": info.role,
            "client": info.client if log_pii else None,
            "degraded": [d.as_log() for d in info.degraded],
            "error_codes": sorted(set(info.error_codes)),
        },
    )
