"""Prometheus metrics: one `Metrics` object (with its own registry) per app.

Every app gets a fresh `CollectorRegistry`, so many apps in one process (the tests) never
collide on metric names. The app keeps its `Metrics` on the runtime
(``Runtime.metrics``); other modules reach it with `metrics_of(runtime)` and record into the objects
below, whose names are a contract with dashboards:

- GraphQL: ``shopfront_graphql_operations_total{operation,type,outcome}`` and
  ``shopfront_graphql_operation_duration_seconds{operation,type}``;
- HTTP: ``shopfront_http_requests_total{route,status}``, requests in flight, and requests
  refused before GraphQL ran (``shopfront_http_rejected_total{code}``: body size, batch size,
  rate limit);
- database: ``shopfront_db_command_duration_seconds{command,outcome}`` from the driver's
  command monitoring, and ``shopfront_database_up`` / ``shopfront_ready`` from the readiness
  monitor;
- strategies (plugin host): calls, failures, timeouts, latency and circuit-breaker state per
  ``kind`` (recommender, coupon, promotion) and ``strategy`` name;
- ingestion: ``shopfront_ingestion_events_total{outcome}`` and the admission gate;
- models: ``shopfront_model_info{strategy,version}`` (1 for the loaded version).

Label values that come from clients (operation names) are bounded: see `OperationNames`.
"""

from __future__ import annotations

import re
import threading
from enum import IntEnum
from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# Seconds; spans a cached in-memory answer (ms) to a request that hit a database deadline.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DB_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

_OPERATION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class BreakerState(IntEnum):
    """Values of ``shopfront_strategy_breaker_state``."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class OperationNames:
    """Maps client-chosen operation names to bounded label values.

    The first ``limit`` distinct well-formed names are kept as they are; later new names and
    malformed ones become ``"other"``, and unnamed operations ``"anonymous"``. A client can
    therefore not grow the metric series without bound by inventing operation names.
    """

    def __init__(self, limit: int = 200) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def label(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        if not _OPERATION_NAME.match(name):
            return "other"
        with self._lock:
            if name in self._seen:
                return name
            if len(self._seen) >= self.limit:
                return "other"
            self._seen.add(name)
            return name


class Metrics:
    """Every metric Shopfront exports, registered in this object's own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.operation_names = OperationNames()

        # -- GraphQL and HTTP --------------------------------------------------------------
        self.graphql_operations = Counter(
            "shopfront_graphql_operations",
            "GraphQL operations by name, type and outcome "
            "(ok, error: resolver errors, rejected: refused before execution).",
            ["operation", "type", "outcome"],
            registry=r,
        )
        self.graphql_duration = Histogram(
            "shopfront_graphql_operation_duration_seconds",
            "Time to answer one GraphQL operation.",
            ["operation", "type"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.graphql_errors = Counter(
            "shopfront_graphql_errors",
            "GraphQL errors returned, by extensions.code.",
            ["code"],
            registry=r,
        )
        self.http_requests = Counter(
            "shopfront_http_requests",
            "HTTP requests by route and status code.",
            ["route", "status"],
            registry=r,
        )
        self.http_in_flight = Gauge(
            "shopfront_http_requests_in_flight",
            "GraphQL HTTP requests being handled now.",
            registry=r,
        )
        self.http_rejected = Counter(
            "shopfront_http_rejected",
            "Requests refused before GraphQL ran, by code (BODY_TOO_LARGE, "
            "TOO_MANY_OPERATIONS, RATE_LIMITED).",
            ["code"],
            registry=r,
        )
        self.rate_limited = Counter(
            "shopfront_rate_limited",
            "Requests refused by a rate limit, by bucket kind (address, storefront, merchant).",
            ["bucket"],
            registry=r,
        )

        # -- database and readiness --------------------------------------------------------
        self.db_command_duration = Histogram(
            "shopfront_db_command_duration_seconds",
            "MongoDB command round trips seen by the driver, by command and outcome.",
            ["command", "outcome"],
            buckets=DB_BUCKETS,
            registry=r,
        )
        self.database_up = Gauge(
            "shopfront_database_up",
            "1 while the readiness monitor reaches MongoDB, else 0.",
            registry=r,
        )
        self.ready = Gauge("shopfront_ready", "1 while /readyz answers ready, else 0.", registry=r)

        # -- strategies (plugin host) ------------------------------------------------------
        strategy_labels = ["kind", "strategy"]
        self.strategy_calls = Counter(
            "shopfront_strategy_calls",
            "Strategy (plugin) calls by kind and strategy name.",
            strategy_labels,
            registry=r,
        )
        self.strategy_failures = Counter(
            "shopfront_strategy_failures",
            "Strategy calls that raised or returned invalid output.",
            strategy_labels,
            registry=r,
        )
        self.strategy_timeouts = Counter(
            "shopfront_strategy_timeouts",
            "Strategy calls cut off at their deadline.",
            strategy_labels,
            registry=r,
        )
        self.strategy_skipped = Counter(
            "shopfront_strategy_skipped",
            "Strategy calls not made because the strategy's circuit breaker was open.",
            strategy_labels,
            registry=r,
        )
        self.strategy_duration = Histogram(
            "shopfront_strategy_duration_seconds",
            "Strategy call latency.",
            strategy_labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.strategy_breaker_state = Gauge(
            "shopfront_strategy_breaker_state",
            "Circuit breaker per strategy: 0 closed, 1 half-open, 2 open.",
            strategy_labels,
            registry=r,
        )
        self.degraded = Counter(
            "shopfront_degraded_parts",
            "Parts left out of responses (a late or failing strategy, a cached fallback), by "
            "strategy and reason (the reason's kind: timeout, error, invalid, circuit open, not "
            "loaded, ...).",
            ["strategy", "reason"],
            registry=r,
        )

        # -- the background writer (`platform.batch_writer`) ---------------------------------
        self.write_queue_depth = Gauge(
            "shopfront_write_queue_depth",
            "Writes waiting for the background writer (served slots, exposures, ...).",
            registry=r,
        )
        self.write_queue_dropped = Counter(
            "shopfront_write_queue_dropped",
            "Writes dropped because the background writer's queue was full, by collection.",
            ["collection"],
            registry=r,
        )
        self.write_batches = Counter(
            "shopfront_write_batches",
            "Batches the background writer sent, by collection and outcome (ok, error).",
            ["collection", "outcome"],
            registry=r,
        )

        # -- ingestion and models ----------------------------------------------------------
        self.ingestion_events = Counter(
            "shopfront_ingestion_events",
            "Events received by outcome (accepted, duplicate, rejected, overloaded).",
            ["outcome"],
            registry=r,
        )
        self.admission_in_flight = Gauge(
            "shopfront_admission_in_flight",
            "Units (events) admitted and not yet finished, per admission gate.",
            ["gate"],
            registry=r,
        )
        self.admission_capacity = Gauge(
            "shopfront_admission_capacity", "Capacity of each admission gate.", ["gate"], registry=r
        )
        self.admission_rejected = Counter(
            "shopfront_admission_rejected",
            "Admissions refused because the gate was full.",
            ["gate"],
            registry=r,
        )
        self.model_info = Gauge(
            "shopfront_model_info",
            "1 for the model artifact version each strategy has loaded.",
            ["strategy", "version"],
            registry=r,
        )
        self._model_versions: dict[str, str] = {}
        self._model_lock = threading.Lock()

    # -- helpers for the modules that record -----------------------------------------------

    def observe_db_command(self, command: str, duration_s: float, succeeded: bool) -> None:
        """The driver's command listener calls this (from any thread)."""
        outcome = "ok" if succeeded else "failed"
        self.db_command_duration.labels(command, outcome).observe(duration_s)

    def record_strategy_call(
        self,
        kind: str,
        strategy: str,
        duration_s: float,
        *,
        failed: bool = False,
        timed_out: bool = False,
    ) -> None:
        """One call of a strategy: counted, timed, and classified."""
        self.strategy_calls.labels(kind, strategy).inc()
        self.strategy_duration.labels(kind, strategy).observe(duration_s)
        if timed_out:
            self.strategy_timeouts.labels(kind, strategy).inc()
        elif failed:
            self.strategy_failures.labels(kind, strategy).inc()

    def set_breaker_state(self, kind: str, strategy: str, state: BreakerState) -> None:
        self.strategy_breaker_state.labels(kind, strategy).set(int(state))

    def set_model_version(self, strategy: str, version: str | int) -> None:
        """Mark ``version`` as the one ``strategy`` serves (the previous one is removed)."""
        new = str(version)
        with self._model_lock:
            old = self._model_versions.get(strategy)
            if old is not None and old != new:
                self.model_info.remove(strategy, old)
            self._model_versions[strategy] = new
            self.model_info.labels(strategy, new).set(1)

    def model_versions(self) -> dict[str, str]:
        with self._model_lock:
            return dict(self._model_versions)

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _HasMetrics(Protocol):
    @property
    def metrics(self) -> Metrics | None: ...


def metrics_of(runtime: _HasMetrics) -> Metrics | None:
    """The app's `Metrics`, or None for a runtime built without them (unit tests)."""
    return runtime.metrics
