"""Offline evaluation: splits, profiles at the cut, metrics, and the per-strategy report."""

from __future__ import annotations

import math

import pytest
from shopfront.plugins.recommenders import trending
from shopfront.recommend.evaluation import (
    build_cases,
    evaluate,
    ranking_metrics,
    split_by_time,
    split_per_user,
)
from shopfront.recommend.interactions import Interactions

from tests.plugins.recommenders.kit import event, product, setup, training

PRODUCTS = [product(p) for p in "abcdefgh"]


def history(user: str, items: str, start: float = 10.0) -> list[dict[str, object]]:
    return [event("view", user, pid, days_ago=start - k) for k, pid in enumerate(items)]


def test_ranking_metrics_by_hand() -> None:
    m = ranking_metrics(["x", "a", "y", "b"], frozenset({"a", "b", "c"}))
    assert m["ndcg@10"] == pytest.approx(
        (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    )
    assert m["hr@10"] == 1.0
    assert m["recall@20"] == pytest.approx(2 / 3)
    assert m["map@10"] == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert ranking_metrics([], frozenset({"a"}))["ndcg@10"] == 0.0


def test_split_per_user_takes_the_last_fifth_rounded_up() -> None:
    events = Interactions.from_events(
        history("u1", "abcdefg") + history("u2", "ab", start=5.0), [p.id for p in PRODUCTS]
    )
    split = split_per_user(events, 0.2)
    by_user = {
        events.user_ids[u]: {events.item_ids[i] for i in items} for u, items in split.test.items()
    }
    assert by_user == {"u1": {"f", "g"}, "u2": {"b"}}  # ceil(1.4) = 2, ceil(0.4) = 1
    assert len(split.train) == 5 + 1
    cases = build_cases(split)
    u1 = next(c for c in cases if c.user == "u1")
    assert u1.profile.recently_viewed == ("e", "d", "c", "b", "a")
    assert u1.seen == frozenset("abcde")


def test_split_by_time_tests_known_shoppers_after_the_cut() -> None:
    events = Interactions.from_events(
        [
            *history("u1", "abcd"),
            event("view", "u1", "h", days_ago=1.0),
            *history("u2", "ef", start=1.5),
            *history("u3", "g", start=20),
        ],
        [p.id for p in PRODUCTS],
    )
    split = split_by_time(events, 0.3)
    tested = {events.user_ids[u] for u in split.test}
    assert tested == {"u1"}  # u2 only appears after the cut, u3 only before it
    assert all(t < min(split.now.values()) for t in split.train.timestamp)


async def test_evaluate_reports_each_strategy_and_the_blend() -> None:
    events = [e for u in range(6) for e in history(f"u{u}", "abcd")]
    events += [e for u in range(3) for e in history(f"fan{u}", "dddd")]  # d is popular
    data = training(PRODUCTS, events)
    split = split_per_user(data.interactions, 0.25)
    strategy = trending.create(setup("trending"))
    await strategy.fit(training(PRODUCTS, list(split.train)))
    rows = await evaluate(
        {"trending": strategy},
        build_cases(split),
        {p.id: p for p in PRODUCTS},
        fit_seconds={"trending": 0.5},
    )
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {"trending", "blend"}
    # Everyone's last item is "d", which trending ranks first once a, b, c are removed.
    assert by_name["trending"]["hr@10"] == 1.0 and by_name["trending"]["users"] == 6
    assert by_name["trending"]["fit_seconds"] == 0.5
    assert by_name["blend"]["ndcg@10"] == 1.0
    assert 0 < float(by_name["blend"]["coverage"]) <= 1
