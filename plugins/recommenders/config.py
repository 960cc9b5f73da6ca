"""Typed strategy configuration.

Each strategy declares its knobs as a frozen dataclass; `default_config` turns it into the
spec's ``default_config`` (so the host validates keys and types from the TOML file), and
`parse_config` turns the validated mapping back into the dataclass, checking ranges declared
with `knob`. A value out of range is a `ValueError` naming the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

C = TypeVar("C")


def knob(default: Any, doc: str, *, min: float | None = None, max: float | None = None) -> Any:
    """A config field with its documentation and allowed range."""
    meta = {"doc": doc, "min": min, "max": max}
    if isinstance(default, dict | list):
        frozen = default  # each instance gets its own copy
        return dataclasses.field(default_factory=lambda: type(frozen)(frozen), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def default_config(cls: type[Any]) -> dict[str, Any]:
    """The dataclass's defaults as a plain mapping (TOML types only)."""
    return dataclasses.asdict(cls())


def parse_config(cls: type[C], values: Mapping[str, Any]) -> C:
    """``cls`` built from ``values`` (missing keys take their defaults).

    Raises `ValueError` naming the first unknown key or out-of-range value.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"unknown config key(s): {', '.join(unknown)}")
    for name, value in values.items():
        low, high = fields[name].metadata.get("min"), fields[name].metadata.get("max")
        numbers = value.values() if isinstance(value, Mapping) else [value]
        for number in numbers:
            if low is not None and number < low:
                raise ValueError(f"{name}: must be at least {low}, got {number!r}")
            if high is not None and number > high:
                raise ValueError(f"{name}: must be at most {high}, got {number!r}")
    return cls(**dict(values))


def describe(cls: type[Any]) -> dict[str, str]:
    """Key -> documentation, for the docs and the `plugins` query."""
    return {f.name: str(f.metadata.get("doc", "")) for f in dataclasses.fields(cls)}
