"""Readiness: a background monitor pings MongoDB; `/readyz` answers from its last result.

The monitor pings every ``health_check_interval_s`` with a deadline of
``health_check_timeout_s``, so a database that stops answering is noticed within
interval + timeout (1.5 s by default) and one that comes back within about one interval.
`/readyz` never waits on the database itself. Other components add their own conditions with
`HealthMonitor.add_check` (for example "models loaded"); a check returns None when fine or a
reason when not. Writers consult `database_up` to fail fast while the database is known down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from shopfront.platform.metrics import Metrics
from shopfront.platform.store import DatabaseUnavailable, Store

log = logging.getLogger(__name__)


Check = Callable[[], str | None]


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reasons: tuple[str, ...]


class HealthMonitor:
    def __init__(
        self,
        store: Store,
        *,
        interval_s: float,
        timeout_s: float,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.metrics = metrics
        self.database_up = True  # the store answered when it was opened
        self.database_error: str | None = None
        self.changed_at = time.monotonic()
        self._checks: dict[str, Check] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        if metrics is not None:
            metrics.database_up.set(1)
            metrics.ready.set(1)

    def add_check(self, name: str, check: Check) -> None:
        """Add a readiness condition; ``check()`` returns None when ready, else a reason."""
        self._checks[name] = check

    def readiness(self, *, draining: bool = False) -> Readiness:
        reasons: list[str] = []
        if draining:
            reasons.append("draining: the service is shutting down")
        if not self.database_up:
            reasons.append(f"database: {self.database_error or 'unreachable'}")
        for name, check in self._checks.items():
            try:
                problem = check()
            except Exception as exc:  # a broken check must not break /readyz
                problem = f"check failed: {exc!r}"
            if problem:
                reasons.append(f"{name}: {problem}")
        ready = not reasons
        if self.metrics is not None:
            self.metrics.ready.set(1 if ready else 0)
        return Readiness(ready, tuple(reasons))

    async def check_once(self) -> bool:
        """Ping once and record the result; returns whether the database answered."""
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that arrives as the ping completes, and the monitor would never stop.
            async with asyncio.timeout(self.timeout_s + 0.5):
                await self.store.ping(timeout_s=self.timeout_s)
        except (TimeoutError, DatabaseUnavailable) as exc:
            self._set(False, str(exc) or "no answer within the deadline")
            return False
        self._set(True, None)
        return True

    def _set(self, up: bool, error: str | None) -> None:
        if up != self.database_up:
            self.changed_at = time.monotonic()
            if up:
                log.warning("database reachable again")
            else:
                log.error("database unreachable: %s", error)
        self.database_up = up
        self.database_error = error
        if self.metrics is not None:
            self.metrics.database_up.set(1 if up else 0)
        self.readiness()  # keeps the shopfront_ready gauge current

    async def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            await self.check_once()
            pause = max(0.0, self.interval_s - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._stop.wait()

    def start(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._run(), name="shopfront-health-monitor")

    async def stop(self) -> None:
        """Stop the monitor; returns within about one ping deadline at worst."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class _HasHealth(Protocol):
    @property
    def health(self) -> HealthMonitor | None: ...


def health_of(runtime: _HasHealth) -> HealthMonitor | None:
    return runtime.health
