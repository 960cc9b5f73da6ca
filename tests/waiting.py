"""Waiting for something the code under test does in the background (a poller, a scheduler,
another process), instead of sleeping: poll a condition until it holds, and fail with what was
awaited when it does not hold within a generous deadline. The deadline only guards against a
hang; it is never what a test asserts (timings are measured in bench/)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

POLL_S = 0.02
DEADLINE_S = 30.0


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], what: str, within_s: float = DEADLINE_S
) -> float:
    """Return (monotonic time) as soon as ``check()`` is true; fail after ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic()
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {within_s:g} s")
        await asyncio.sleep(POLL_S)


def wait_until(check: Callable[[], bool], what: str, within_s: float = DEADLINE_S) -> float:
    """`eventually` for synchronous tests (subprocesses, threads)."""
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {within_s:g} s")
        time.sleep(POLL_S)
    return time.monotonic()
