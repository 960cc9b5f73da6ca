"""Decayed affinities kept with `$inc` only (shopfront.shoppers.decay) and the profile key
escaping."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from shopfront.shoppers import decay
from shopfront.shoppers.profiles import category_keys, decode_key, encode_key

DAY = 86_400
times = st.datetimes(
    min_value=datetime(2015, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
)
half_lives = st.integers(min_value=60, max_value=400 * DAY)
weights = st.floats(min_value=-10, max_value=10, allow_nan=False).filter(lambda w: abs(w) > 1e-3)


def stored_sums(events: list[tuple[datetime, float]], half_life: int) -> dict[str, list[float]]:
    """What the database holds after one `$inc` per event: per era, [start, sum]."""
    eras: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for t, w in events:
        scale = decay.scale_for(t, half_life)
        eras[scale.key][0] = scale.start
        eras[scale.key][1] += w * scale.factor
    return eras


def read(eras: dict[str, list[float]], half_life: int, now: datetime) -> float:
    return sum(decay.decayed(total, start, half_life, now) for start, total in eras.values())


@given(
    st.lists(st.tuples(times, weights), min_size=1, max_size=20),
    half_lives,
    st.integers(min_value=0, max_value=3 * 365 * DAY),
)
def test_stored_sums_read_back_as_the_direct_formula(
    events: list[tuple[datetime, float]], half_life: int, later_s: int
) -> None:
    now = max(t for t, _ in events) + timedelta(seconds=later_s)
    direct = [decay.decayed_weight(w, t, half_life, now) for t, w in events]
    got = read(stored_sums(events, half_life), half_life, now)
    scale = max(abs(d) for d in direct)
    assert math.isfinite(got)
    assert math.isclose(got, sum(direct), rel_tol=1e-9, abs_tol=1e-9 * max(scale, 1e-300))


@given(
    st.lists(st.tuples(times, st.floats(min_value=0.001, max_value=10)), min_size=1, max_size=20),
    half_lives,
    st.lists(st.integers(min_value=0, max_value=10 * 365 * DAY), min_size=2, max_size=6),
)
def test_positive_affinity_only_decreases_with_time(
    events: list[tuple[datetime, float]], half_life: int, offsets: list[int]
) -> None:
    last = max(t for t, _ in events)
    eras = stored_sums(events, half_life)
    values = [read(eras, half_life, last + timedelta(seconds=s)) for s in sorted(offsets)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert all(v >= 0 for v in values)


# How far "now" lies after the events, in half-lives: beyond ~1000 every weight underflows.
ages = st.floats(min_value=0, max_value=300)


@given(times, half_lives, st.floats(0.01, 10), st.floats(0.01, 10), ages)
def test_weights_are_respected_at_the_same_moment(
    t: datetime, half_life: int, w1: float, w2: float, age: float
) -> None:
    now = t + timedelta(seconds=age * half_life)
    a = read(stored_sums([(t, w1)], half_life), half_life, now)
    b = read(stored_sums([(t, w2)], half_life), half_life, now)
    assert (a > b) == (w1 > w2)
    assert math.isclose(a / b, w1 / w2, rel_tol=1e-9)


@given(times, half_lives, st.floats(min_value=0.01, max_value=10))
def test_one_half_life_halves_the_weight(t: datetime, half_life: int, w: float) -> None:
    eras = stored_sums([(t, w)], half_life)
    assert math.isclose(read(eras, half_life, t), w, rel_tol=1e-9)
    assert math.isclose(
        read(eras, half_life, t + timedelta(seconds=half_life)), w / 2, rel_tol=1e-9
    )


@given(times, half_lives, st.floats(min_value=0.01, max_value=10), ages)
def test_a_newer_event_outweighs_an_older_one_of_the_same_weight(
    t: datetime, half_life: int, w: float, age: float
) -> None:
    newer = t + timedelta(seconds=half_life)
    now = newer + timedelta(seconds=age * half_life)
    old_value = read(stored_sums([(t, w)], half_life), half_life, now)
    new_value = read(stored_sums([(newer, w)], half_life), half_life, now)
    assert new_value > old_value


@given(st.datetimes(min_value=datetime(1990, 1, 1), timezones=st.just(UTC)), st.integers(1, 60))
def test_scales_never_overflow(t: datetime, half_life: int) -> None:
    # Even with a one-second half-life, centuries from the origin, the factor stays bounded.
    scale = decay.scale_for(t, half_life)
    assert 1.0 <= scale.factor < 2.0**decay.ERA_HALF_LIVES
    assert "." not in scale.key and "$" not in scale.key


def test_a_long_dead_era_reads_as_zero() -> None:
    t = datetime(2025, 6, 1, tzinfo=UTC)
    eras = stored_sums([(t, 5.0)], 60)
    assert read(eras, 60, t + timedelta(days=30)) == 0.0


@given(st.text())
@settings(max_examples=300)
def test_keys_round_trip_and_are_safe_field_names(text: str) -> None:
    key = encode_key(text)
    assert decode_key(key) == text
    assert "." not in key and "$" not in key and "\x00" not in key


def test_category_keys_are_every_prefix() -> None:
    assert category_keys(("Shoes", "Running", "Trail")) == [
        "Shoes",
        "Shoes > Running",
        "Shoes > Running > Trail",
    ]
    assert category_keys(()) == []
