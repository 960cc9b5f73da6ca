"""Admission control: a bounded gate in front of work that queues up under load (ingestion).

`AdmissionGate.admit(units)` either admits the work at once or raises `Overloaded` at once —
it never waits, so an overloaded service answers quickly instead of hanging. The GraphQL
layer maps `Overloaded` to the error code ``OVERLOADED`` and the HTTP layer answers it with
status 503 and ``Retry-After``. Work that was admitted runs to completion, so everything a
caller was told is accepted has really been handled.

Usage (the events mutation)::

    gate = ingestion_gate(runtime)
    async with gate.admit(len(events)):
        results = await ingest(store, events)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from shopfront.platform.config import Settings
from shopfront.platform.metrics import Metrics


class Overloaded(Exception):
    """The gate is full: the caller should retry after ``retry_after_s`` seconds."""

    def __init__(self, gate: str, retry_after_s: int) -> None:
        self.gate = gate
        self.retry_after_s = retry_after_s
        super().__init__(
            f"the service is overloaded ({gate}); nothing was accepted, retry after "
            f"{retry_after_s} s"
        )


class AdmissionGate:
    """At most ``capacity`` units admitted at once.

    A single admission larger than the whole capacity is let in only when the gate is idle, so
    an oversized (but otherwise valid) batch is slow rather than refused forever.
    Not thread-safe: use it from one event loop (the app's).
    """

    def __init__(
        self,
        name: str,
        capacity: int,
        *,
        retry_after_s: int = 1,
        metrics: Metrics | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"admission gate {name!r}: capacity must be at least 1")
        self.name = name
        self.capacity = capacity
        self.retry_after_s = retry_after_s
        self.in_flight = 0
        self.rejected = 0
        self._metrics = metrics
        if metrics is not None:
            metrics.admission_capacity.labels(name).set(capacity)
            metrics.admission_in_flight.labels(name).set(0)

    def _set_gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.admission_in_flight.labels(self.name).set(self.in_flight)

    def try_acquire(self, units: int = 1) -> None:
        """Admit ``units`` or raise `Overloaded`; pair with `release`."""
        if units < 0:
            raise ValueError("units must not be negative")
        if self.in_flight and self.in_flight + units > self.capacity:
            self.rejected += 1
            if self._metrics is not None:
                self._metrics.admission_rejected.labels(self.name).inc()
            raise Overloaded(self.name, self.retry_after_s)
        self.in_flight += units
        self._set_gauge()

    def release(self, units: int = 1) -> None:
        self.in_flight = max(0, self.in_flight - units)
        self._set_gauge()

    @asynccontextmanager
    async def admit(self, units: int = 1) -> AsyncIterator[None]:
        """Hold ``units`` for the duration of the block (raises `Overloaded` when full)."""
        self.try_acquire(units)
        try:
            yield
        finally:
            self.release(units)


def ingestion_gate_for(settings: Settings, metrics: Metrics | None = None) -> AdmissionGate:
    return AdmissionGate(
        "ingestion",
        settings.ingest_max_in_flight,
        retry_after_s=settings.overload_retry_after_s,
        metrics=metrics,
    )


class _HasIngestion(Protocol):
    @property
    def ingestion(self) -> AdmissionGate | None: ...


def ingestion_gate(runtime: _HasIngestion) -> AdmissionGate:
    """The app's ingestion gate (the app lifespan sets ``Runtime.ingestion``)."""
    gate = runtime.ingestion
    if gate is None:
        raise LookupError("no ingestion gate registered on this runtime")
    return gate
