"""Isolation: deadlines, output validation, circuit breakers, and plugin code on its own
thread so a strategy that never yields cannot stall the service's event loop."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from shopfront.extend.config import config_from_mapping
from shopfront.extend.host import PluginHost
from shopfront.extend.isolation import (
    MAX_CANDIDATES,
    BreakerState,
    CircuitBreaker,
    OutputError,
    validate_candidates,
)
from shopfront.extend.records import CallObservation
from shopfront.platform.config import Settings
from shopfront.platform.store import Store
from shopfront.recommend.contract import Candidate, Reason, RecommenderSpec, Slot
from shopfront.shoppers.context import PageType, RequestContext
from shopfront.testing import StaticCatalog

from tests.plugin_doubles import (
    Flood,
    Raising,
    Sleeping,
    SleepProbe,
    SpecPlugin,
    SpinControl,
    Spinning,
    Switch,
    Switchable,
    WrongType,
    list_recommender,
)

CTX = RequestContext("r1", datetime.now(UTC), PageType.HOME, "EUR", StaticCatalog())
SLOT = Slot("s", "S", ("x",))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_consecutive_failures_and_probes_after_cool_down() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=3, cooldown_s=10, clock=clock)
    assert breaker.allow()
    breaker.failure()
    breaker.success()  # a success resets the count
    for _ in range(2):
        assert breaker.allow() and not breaker.failure()
    assert breaker.allow() and breaker.failure()  # the third in a row opens it
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one probe at a time
    assert breaker.failure()  # the probe failed: open again, new cool-down
    assert breaker.state is BreakerState.OPEN and breaker.opened == 2
    clock.now += 10
    assert breaker.allow()
    breaker.abandon()  # the caller gave up on the probe: another may go
    assert breaker.allow()
    breaker.success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()


async def start_host(
    settings: Settings, store: Store, plugins: list[tuple[str, object]], **kw: Any
) -> PluginHost:
    return await PluginHost.start(
        dataclasses.replace(settings, strategy_timeout_ms=100),
        store,
        builtins=(),
        plugins=plugins,
        discover=False,
        config=config_from_mapping(kw.pop("config", {})),
        **kw,
    )


async def test_breaker_opens_and_closes_through_the_host(settings: Settings, store: Store) -> None:
    switch, clock = Switch(failing=True), FakeClock()
    spec = RecommenderSpec("flaky", lambda s: Switchable(s, switch), "flaky upstream")
    config = {"strategies": {"flaky": {"breaker_failures": 2, "breaker_cooldown_ms": 5000}}}
    host = await start_host(
        settings, store, [("flaky", SpecPlugin([spec]))], config=config, clock=clock
    )
    try:
        reasons = [(await host.recommend("flaky", CTX, SLOT)).problem for _ in range(4)]
        assert [r.reason if r else None for r in reasons] == [
            "error: ConnectionError",
            "error: ConnectionError",
            "circuit open",
            "circuit open",
        ]
        assert switch.calls == 2  # the open breaker kept the last two calls away
        health = host.health("flaky")
        assert (health.calls, health.failures, health.short_circuited) == (2, 2, 2)
        assert health.breaker_state is BreakerState.OPEN
        switch.failing = False
        clock.now += 5
        assert host.health("flaky").breaker_state is BreakerState.HALF_OPEN
        result = await host.recommend("flaky", CTX, SLOT)
        assert result.problem is None and result.value == (
            Candidate("p1", 1.0, (Reason("RECOMMENDED", "flaky upstream", "flaky"),)),
        )
        assert host.health("flaky").breaker_state is BreakerState.CLOSED
        assert switch.calls == 3
    finally:
        await host.close()


async def test_each_kind_of_misbehaviour_is_contained_and_named(
    settings: Settings, store: Store
) -> None:
    probe = SleepProbe()
    plugins: list[tuple[str, object]] = [
        ("raises", SpecPlugin([RecommenderSpec("raiser", Raising, "raises")])),
        (
            "sleeps",
            SpecPlugin(
                [RecommenderSpec("sleeper", lambda s: Sleeping(s, probe), "", {"sleep_s": 5.0})]
            ),
        ),
        ("wrong", SpecPlugin([RecommenderSpec("wrong_type", WrongType, "wrong")])),
        ("flood", SpecPlugin([RecommenderSpec("flooder", Flood, "flood")])),
        ("good", SpecPlugin([list_recommender("fine", ["p1", "p2"])])),
    ]
    seen: list[CallObservation] = []
    # building 10,000 candidates takes time on a busy machine; its output is the point here
    config = {"strategies": {"flooder": {"timeout_ms": 5000}}}
    host = await start_host(settings, store, plugins, config=config)
    host.add_observer(seen.append)
    try:
        names = ["raiser", "sleeper", "wrong_type", "flooder", "fine"]
        results = await asyncio.gather(*(host.recommend(n, CTX, SLOT) for n in names))
        problems = {n: r.problem.reason for n, r in zip(names, results, strict=True) if r.problem}
        assert problems == {
            "raiser": "error: RuntimeError",
            "sleeper": "timeout after 100 ms",
            "wrong_type": "invalid output: expected a list of candidates, got dict",
            "flooder": f"invalid output: returned 10000 candidates; at most {MAX_CANDIDATES}",
        }
        fine = results[-1].value
        assert fine is not None and [c.product_id for c in fine] == ["p1", "p2"]
        assert await asyncio.to_thread(probe.cancelled.wait, 5)  # the late call was cancelled
        assert not probe.finished.is_set()
        outcomes = {o.strategy: o.outcome for o in seen}
        assert outcomes == {
            "raiser": "error",
            "sleeper": "timeout",
            "wrong_type": "invalid",
            "flooder": "invalid",
            "fine": "ok",
        }
        assert host.health("sleeper").timeouts == 1 and host.health("raiser").failures == 1
    finally:
        await host.close()


async def test_a_spinning_strategy_does_not_stall_the_event_loop(
    settings: Settings, store: Store
) -> None:
    control = SpinControl()
    spec = RecommenderSpec("spinner", lambda s: Spinning(s, control), "spins")
    host = await start_host(
        settings, store, [("spins", SpecPlugin([spec, list_recommender("fine", ["p1"])]))]
    )
    try:
        call = asyncio.create_task(host.recommend("spinner", CTX, SLOT))
        assert await asyncio.to_thread(control.started.wait, 10)
        # While the strategy spins on its plugin thread, this loop still does real work ...
        await store.products.insert_one({"id": "during-spin"})
        assert await store.products.count_documents({}) == 1
        # ... and the call comes back as a timeout, long before the spin would end.
        result = await call
        assert result.problem is not None and result.problem.reason == "timeout after 100 ms"
        # The watchdog then finds the plugin's loop stuck and interrupts the spin, so the
        # plugin's other strategies work again.
        assert await asyncio.to_thread(control.interrupted.wait, 10)
        assert not control.finished.is_set()
        fine = await host.recommend("fine", CTX, SLOT)
        assert fine.problem is None and fine.value is not None
        strategy = host.strategy("spinner")
        assert strategy is not None and strategy.plugin.loop is not None
        assert strategy.plugin.loop.interruptions >= 1
    finally:
        control.release.set()
        await host.close()


async def test_jobs_without_a_deadline_are_never_interrupted(
    settings: Settings, store: Store
) -> None:
    control = SpinControl(max_s=0.5)
    spec = RecommenderSpec("spinner", lambda s: Spinning(s, control), "spins")
    plugin = SpecPlugin(
        [spec, RecommenderSpec("late", lambda s: Sleeping(s, SleepProbe()), "", {"sleep_s": 1.0})]
    )
    host = await start_host(settings, store, [("spins", plugin)])
    try:
        # a long job (as training is) holds the loop; a request meanwhile times out
        job = asyncio.create_task(host.run_on_strategy("spinner", lambda r: r.recommend(CTX, SLOT)))
        assert await asyncio.to_thread(control.started.wait, 10)
        late = await host.recommend("late", CTX, SLOT)
        assert late.problem is not None and late.problem.reason.startswith("timeout")
        assert await job == []
        assert control.finished.is_set() and not control.interrupted.is_set()
    finally:
        await host.close()


def candidates() -> st.SearchStrategy[list[Candidate]]:
    ids = st.sampled_from([f"p{i}" for i in range(8)])
    scores = st.floats(allow_nan=False, allow_infinity=False, width=32)
    reason = st.builds(Reason, code=st.just("C"), text=st.text(max_size=5))
    return st.lists(st.builds(Candidate, ids, scores, st.tuples(reason) | st.just(())), max_size=30)


@given(candidates())
def test_validated_candidates_keep_first_occurrences_and_always_have_a_reason(
    items: list[Candidate],
) -> None:
    fallback = Reason("FALLBACK", "because", "x")
    out = validate_candidates(items, "x", fallback)
    firsts = list(dict.fromkeys(c.product_id for c in items))
    assert [c.product_id for c in out] == firsts
    assert all(c.reasons and all(r.strategy == "x" for r in c.reasons) for c in out)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("p1", "got str"),
        ([Candidate("", 1.0)], "product_id"),
        ([Candidate("p1", float("nan"))], "finite"),
        ([Candidate("p1", True)], "finite"),  # type: ignore[arg-type]
        ([Candidate("p1", 1.0, ("why",))], "Reason"),  # type: ignore[arg-type]
        ((c for c in ()), "got generator"),
    ],
)
def test_malformed_candidates_are_rejected(value: Any, message: str) -> None:
    with pytest.raises(OutputError, match=message):
        validate_candidates(value, "x", Reason("F", "f"))
