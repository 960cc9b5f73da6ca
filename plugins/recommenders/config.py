"""Typed strategy configuration for the built-in recommenders.

Each strategy declares its knobs as a frozen dataclass, given to its spec as ``config_type``:
the host checks the config file against the declared types and bounds (naming the plugin, the
strategy, the setting and the value) and the factory reads it with ``setup.config_as(...)``.
`knob` is `shopfront.setting` with the documentation first; a table knob (event weights)
given in part keeps the default's other keys.
"""

from __future__ import annotations

from typing import Any

from shopfront import setting


def knob(default: Any, doc: str, *, min: float | None = None, max: float | None = None) -> Any:
    """A declared setting with its documentation and allowed range."""
    return setting(default, doc=doc, min=min, max=max, merge=isinstance(default, dict))
