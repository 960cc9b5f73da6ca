"""How the plugin host keeps one plugin's trouble out of everyone else's request.

Three pieces, used only by `shopfront.extend.host`:

- `PluginLoop`: every plugin's code runs on an event loop of its own, in a thread of its own.
  The service's event loop submits a call there and waits for it under a deadline. This is the
  only arrangement in which a deadline holds against a strategy that never yields: an
  ``async def recommend`` that spins in a CPU loop (or calls a blocking library) without an
  ``await`` cannot be interrupted on the loop it runs on — ``asyncio.wait_for`` needs that loop
  to get control back. On a separate thread the spin only occupies that plugin's thread;
  Python switches threads every few milliseconds, so the service loop keeps serving, gives up
  on the call when the deadline passes, and discards the late result. One loop per *plugin*
  (not per call or per strategy) keeps the thread count small and gives plugin authors a simple
  rule: all of a plugin's code — factories, strategies, event hooks — runs on one thread, so
  it needs no locks of its own. The price: a plugin whose strategy spins also stalls its other
  strategies until the spin ends; their deadlines and breakers contain that.
  A spin is also bounded, because a spinning thread still takes its share of the interpreter
  lock and slows every other thread: when a call overruns its deadline and the plugin's loop
  then fails to answer a ping within a short grace period, the loop is stuck inside a step, and
  the host raises `StrategyInterrupted` in the plugin's thread (CPython's
  ``PyThreadState_SetAsyncExc``). That ends a pure-Python loop at its next bytecode; code
  blocked inside a C call is interrupted when the call returns. It is a `BaseException`, so a
  plugin's ``except Exception`` does not swallow it. Long jobs the host starts without a
  deadline (training) are never interrupted.
  A consequence plugin authors must know: async database clients are bound to the loop that
  created them, so the `Store` a plugin receives in `StrategySetup` is opened on its plugin
  loop, and a plugin must not use the service's own store.
- `CircuitBreaker`: per strategy; after N consecutive failures it opens and the host stops
  calling the strategy; after a cool-down one probe call is let through (half-open); its
  success closes the breaker, its failure opens it again.
- validators: a strategy's output is checked for type and size before anything else sees it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import inspect
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from shopfront.offers.contract import CouponOffer, Nudge, PromotionOutcome
from shopfront.recommend.contract import Candidate, Reason

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_CANDIDATES = 1000  # per strategy call; more is a bug (a pass over the catalog), not a list
MAX_OFFERS = 100
MAX_ID_LEN = 200
MAX_TEXT_LEN = 1000


class OutputError(ValueError):
    """A strategy returned something that is not the shape its protocol promises."""


class StrategyInterrupted(BaseException):
    """Raised inside plugin code that held its plugin's loop past a deadline without yielding."""


STUCK_GRACE_S = 0.05  # how long a loop may ignore a ping after a deadline before it is stuck
MAX_INTERRUPTS = 3


class PluginLoop:
    """An event loop running in a daemon thread, owned by one plugin."""

    def __init__(self, plugin: str) -> None:
        self.plugin = plugin
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(self._on_loop_error)
        self.interruptions = 0
        self._jobs = 0  # calls without a deadline in flight (training): never interrupted
        self._watchdog: asyncio.Task[None] | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"shopfront-plugin:{plugin}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            while True:
                try:
                    self.loop.run_forever()
                    break
                except StrategyInterrupted:
                    # The step ended just before the interruption landed: keep serving.
                    log.warning("plugin %r: interrupted between steps; loop restarted", self.plugin)
        finally:
            try:
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            finally:
                self.loop.close()

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        log.warning(
            "plugin %r: %s",
            self.plugin,
            context.get("message", "unhandled error"),
            exc_info=context.get("exception"),
        )

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        """Call ``fn`` on this loop (awaiting its result if it is awaitable). Plugin code is
        untyped from here on: callers validate what comes back."""

        async def invoke() -> Any:
            result = fn()
            if inspect.isawaitable(result):
                return await result
            return result

        return asyncio.run_coroutine_threadsafe(invoke(), self.loop)

    async def run(self, fn: Callable[[], Any], timeout_s: float | None) -> Any:
        """Run ``fn`` here and wait from the caller's loop; `TimeoutError` after ``timeout_s``.

        On timeout (or when the caller is cancelled) the call is cancelled on the plugin loop;
        a call that never yields keeps running until it does, and its result is dropped.
        """
        future = asyncio.wrap_future(self.submit(fn))
        if timeout_s is not None:
            return await asyncio.wait_for(future, timeout_s)
        self._jobs += 1
        try:
            return await future
        finally:
            self._jobs -= 1

    def watch(self) -> None:
        """A call here overran its deadline: check, in the background, that the loop still
        answers, and interrupt the code holding it if it does not (see the module doc)."""
        if self._watchdog is not None or self._jobs or not self.alive:
            return
        self._watchdog = asyncio.get_running_loop().create_task(self._unstick())

    async def _responsive(self, timeout_s: float) -> bool:
        try:
            await self.run(lambda: None, timeout_s)
        except TimeoutError:
            return False
        except RuntimeError:  # closed meanwhile
            return True
        return True

    async def _unstick(self) -> None:
        try:
            # The first check is quick; after an interruption the thread gets longer to unwind
            # (on a busy machine it may wait for the interpreter lock) before another one.
            wait = STUCK_GRACE_S
            for _ in range(MAX_INTERRUPTS):
                if await self._responsive(wait) or self._jobs:
                    return
                self.interrupt()
                wait = max(wait * 10, 0.5)
            if not await self._responsive(wait):
                log.error(
                    "plugin %r: its thread is still stuck after %d interruptions",
                    self.plugin,
                    MAX_INTERRUPTS,
                )
        finally:
            self._watchdog = None

    def interrupt(self) -> None:
        """Raise `StrategyInterrupted` in the plugin's thread at its next bytecode."""
        ident = self._thread.ident
        if ident is None or not self.alive:
            return
        self.interruptions += 1
        log.warning(
            "plugin %r: its thread held its loop past a deadline without yielding; interrupting",
            self.plugin,
        )
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(ident), ctypes.py_object(StrategyInterrupted)
        )

    async def close(self, timeout_s: float) -> bool:
        """Cancel what still runs, stop the loop and join the thread; False if it would not
        stop in time (the daemon thread is then left behind, and logged)."""
        if not self.alive:
            return True

        async def cancel_all() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        try:
            await self.run(cancel_all, timeout_s)
        except TimeoutError:
            self.interrupt()  # stuck: free the thread so the loop can stop
        except RuntimeError:
            pass
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:  # the loop has already closed
            return True
        await asyncio.to_thread(self._thread.join, timeout_s)
        if self._thread.is_alive():
            log.warning("plugin %r: its thread did not stop within %.1fs", self.plugin, timeout_s)
            return False
        return True


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure circuit breaker with a cool-down and a single half-open probe.

    Not thread-safe: the host uses it from the service's event loop only.
    """

    def __init__(
        self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        self.threshold = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = False
        self.opened = 0  # how often it has opened

    @property
    def state(self) -> BreakerState:
        """The state as a caller would find it now (open past its cool-down reads half-open)."""
        if self._state is BreakerState.OPEN and self._cooled_down():
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self.cooldown_s

    def allow(self) -> bool:
        """May a call go ahead? In half-open state only one probe is in flight at a time."""
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if not self._cooled_down():
                return False
            self._state = BreakerState.HALF_OPEN
        if self._probing:
            return False
        self._probing = True
        return True

    def success(self) -> None:
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._probing = False

    def failure(self) -> bool:
        """Record a failure; True when this failure opened the breaker."""
        self._consecutive += 1
        was = self._state
        self._probing = False
        if was is BreakerState.HALF_OPEN or (
            was is BreakerState.CLOSED and self._consecutive >= self.threshold
        ):
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
            self.opened += 1
            return True
        return False

    def abandon(self) -> None:
        """The call was cancelled by the caller: neither success nor failure, but a probe in
        flight must be released or the breaker would never close."""
        self._probing = False


# -- output validation ---------------------------------------------------------------------


def _check_reason(reason: Any, where: str, strategy: str) -> Reason:
    if not isinstance(reason, Reason):
        raise OutputError(f"{where}: expected a Reason, got {type(reason).__name__}")
    if not isinstance(reason.code, str) or not reason.code:
        raise OutputError(f"{where}.code must be a non-empty string")
    if not isinstance(reason.text, str) or len(reason.text) > MAX_TEXT_LEN:
        raise OutputError(f"{where}.text must be a string of at most {MAX_TEXT_LEN} characters")
    if not isinstance(reason.strategy, str):
        raise OutputError(f"{where}.strategy must be a string")
    return reason if reason.strategy else replace(reason, strategy=strategy)


def _sequence(value: Any, what: str, limit: int) -> Sequence[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise OutputError(f"expected a list of {what}, got {type(value).__name__}")
    if len(value) > limit:
        raise OutputError(f"returned {len(value)} {what}; at most {limit}")
    return value


def validate_candidates(value: Any, strategy: str, fallback: Reason) -> tuple[Candidate, ...]:
    """``value`` as candidates: a list or tuple of `Candidate` (at most `MAX_CANDIDATES`) with
    non-empty string ids and finite scores. Reasons get the strategy's name; a candidate with
    none gets ``fallback``; a repeated product keeps its first (best) entry."""
    items = _sequence(value, "candidates", MAX_CANDIDATES)
    out: list[Candidate] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, Candidate):
            raise OutputError(f"item {i}: expected a Candidate, got {type(item).__name__}")
        pid = item.product_id
        if not isinstance(pid, str) or not pid or len(pid) > MAX_ID_LEN:
            raise OutputError(f"item {i}: product_id must be a non-empty string")
        score = item.score
        if (
            not isinstance(score, int | float)
            or isinstance(score, bool)
            or not math.isfinite(score)
        ):
            raise OutputError(f"item {i}: score must be a finite number, got {score!r}")
        if not isinstance(item.reasons, list | tuple):
            raise OutputError(f"item {i}: reasons must be a tuple of Reason")
        if pid in seen:
            continue
        seen.add(pid)
        reasons = tuple(
            _check_reason(r, f"item {i}.reasons[{j}]", strategy) for j, r in enumerate(item.reasons)
        )
        out.append(Candidate(pid, float(score), reasons or (fallback,)))
    return tuple(out)


def validate_offers(value: Any, strategy: str) -> tuple[CouponOffer, ...]:
    """``value`` as coupon offers: a list or tuple of `CouponOffer` with a code, a title and a
    reason; each gets the strategy's name."""
    items = _sequence(value, "offers", MAX_OFFERS)
    out: list[CouponOffer] = []
    for i, item in enumerate(items):
        if not isinstance(item, CouponOffer):
            raise OutputError(f"offer {i}: expected a CouponOffer, got {type(item).__name__}")
        if not isinstance(item.code, str) or not item.code or len(item.code) > MAX_ID_LEN:
            raise OutputError(f"offer {i}: code must be a non-empty string")
        if not isinstance(item.title, str) or len(item.title) > MAX_TEXT_LEN:
            raise OutputError(f"offer {i}: title must be a string")
        if item.expires_at is not None and not isinstance(item.expires_at, datetime):
            raise OutputError(f"offer {i}: expires_at must be a datetime or None")
        reason = _check_reason(item.reason, f"offer {i}.reason", strategy)
        out.append(replace(item, reason=reason, strategy=item.strategy or strategy))
    return tuple(out)


def validate_outcome(value: Any) -> PromotionOutcome:
    """``value`` as a `PromotionOutcome` (the amounts are checked by the pricing chain)."""
    if not isinstance(value, PromotionOutcome):
        raise OutputError(f"expected a PromotionOutcome, got {type(value).__name__}")
    if not isinstance(value.applied, bool):
        raise OutputError("applied must be True or False")
    if not isinstance(value.line_discounts, Mapping):
        raise OutputError("line_discounts must be a mapping of line index to minor units")
    if value.nudge is not None and not isinstance(value.nudge, Nudge):
        raise OutputError(f"nudge must be a Nudge or None, got {type(value.nudge).__name__}")
    return value
