"""Custom scalars, registered through `SCALARS` in the schema config.

Money amounts are `Long`: GraphQL's Int stops at 2^31-1 minor units (21 million euros),
which a revenue report can pass.
"""

from __future__ import annotations

from typing import Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

Long = NewType("Long", int)
JSON = NewType("JSON", object)

_MAX = 2**53 - 1  # the largest integer a JavaScript client reads exactly


def _parse_long(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"Long must be a whole number, got {value!r}")
    if not -_MAX <= value <= _MAX:
        raise ValueError(f"Long {value} is outside ±(2^53-1)")
    return value


SCALARS: dict[object, ScalarDefinition] = {
    Long: strawberry.scalar(
        name="Long",
        description="A whole number up to ±(2^53-1); money amounts in minor units.",
        serialize=int,
        parse_value=_parse_long,
    ),
    JSON: strawberry.scalar(
        name="JSON",
        description="A JSON document (data exports).",
        serialize=lambda v: v,
        parse_value=lambda v: v,
    ),
}
