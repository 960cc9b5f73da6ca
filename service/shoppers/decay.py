"""Exponentially decayed sums that MongoDB can maintain with `$inc` alone.

An affinity is a sum of event weights, each halved every ``half_life`` since its event:

    value(now) = sum_i  w_i * 2 ** (-(now - t_i) / half_life)

Decaying the stored number in place would need a read-modify-write. Instead each weight is
stored *scaled up* to a fixed epoch ``E``:

    stored = sum_i  w_i * 2 ** ((t_i - E) / half_life)        (an `$inc` per event)
    value(now) = stored * 2 ** (-(now - E) / half_life)       (one multiplication on read)

which is the same sum, because 2**((t_i - E)/h) * 2**(-(now - E)/h) = 2**(-(now - t_i)/h).

The scale grows without bound as time passes the epoch and a float overflows past 2**1024, so
the epoch is not one instant but a sequence of *eras*: era ``k`` starts at
``ORIGIN + k * ERA_HALF_LIVES * half_life`` and its sums are scaled to its own start, so a
scale never exceeds ``2**ERA_HALF_LIVES``. Each era's sums are kept under their own key
(`Scale.key`), which also names the half-life, so changing the half-life setting starts fresh
sums rather than misreading old ones (old sums keep decaying at the half-life they were written
with). A sum from an era that ended ``ERA_HALF_LIVES`` half-lives ago is worth less than
``2**-ERA_HALF_LIVES`` of its weight and reads as practically nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# The first era starts here; events before it simply fall in negative eras.
ORIGIN = datetime(2025, 1, 1, tzinfo=UTC)
# Half-lives per era: scales stay below 2**256 (~1e77), far from float overflow (~1e308) even
# when multiplied by large weights and counts.
ERA_HALF_LIVES = 256


@dataclass(frozen=True)
class Scale:
    """Where and how much to `$inc` for one event: era key and start, and the factor."""

    key: str  # "h<half-life seconds>e<era>", a field name (no '.' or '$')
    start: int  # the era's start, whole seconds since the Unix epoch
    half_life_s: int
    factor: float  # 2 ** ((t - start) / half_life), in [1, 2**ERA_HALF_LIVES)


_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _unix_us(t: datetime) -> int:
    # Whole microseconds, so differences of instants are exact before the one division.
    return (t - _UNIX) // _US


def half_life_seconds(days: float) -> int:
    return max(1, round(days * 86_400))


def scale_for(t: datetime, half_life_s: int) -> Scale:
    """The era of event time ``t`` and the factor its weight is multiplied by."""
    if half_life_s < 1:
        raise ValueError("half_life_s must be at least 1 second")
    era_len_s = ERA_HALF_LIVES * half_life_s
    since_origin_us = _unix_us(t) - _unix_us(ORIGIN)
    era = since_origin_us // (era_len_s * 1_000_000)
    start = _unix_us(ORIGIN) // 1_000_000 + era * era_len_s
    return Scale(
        key=f"h{half_life_s}e{era}",
        start=start,
        half_life_s=half_life_s,
        factor=2.0 ** ((_unix_us(t) - start * 1_000_000) / (half_life_s * 1_000_000)),
    )


def decayed(stored: float, start: float, half_life_s: float, now: datetime) -> float:
    """The value at ``now`` of a sum stored scaled to an era starting at ``start``."""
    exponent = -(_unix_us(now) - round(start * 1_000_000)) / (half_life_s * 1_000_000)
    # stored * 2**exponent, with the exponents added first: the stored sum may be as large as
    # 2**256 while 2**exponent alone would already be subnormal and have lost precision.
    mantissa, power = math.frexp(float(stored))
    total = power + exponent
    whole = math.floor(total)
    return math.ldexp(mantissa * 2.0 ** (total - whole), whole)


def decayed_weight(weight: float, t: datetime, half_life_s: float, now: datetime) -> float:
    """The direct formula, for one event: ``weight * 2 ** (-(now - t) / half_life)``."""
    return float(weight * 2.0 ** (-(_unix_us(now) - _unix_us(t)) / (half_life_s * 1_000_000)))
