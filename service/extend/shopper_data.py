"""What the plugin host makes of the privacy hooks' answers (``on_user_erased``,
``export_user_data``): checked counts and exports, so an erasure or an export is never
reported complete when a plugin did not answer as its hook promises."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shopfront.extend.records import PluginEraseError
from shopfront.shoppers.privacy import PluginExport


def erased_counts(values: Mapping[str, Any], failures: dict[str, str]) -> dict[str, int]:
    """Records deleted, by plugin; raises `PluginEraseError` (carrying the others' counts)
    when any plugin failed or answered with something other than a count."""
    deleted: dict[str, int] = {}
    for plugin, value in values.items():
        if value is None:
            deleted[plugin] = 0
        elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            deleted[plugin] = value
        else:
            failures[plugin] = f"returned {value!r}, expected a count"
    if failures:
        raise PluginEraseError(failures, deleted)
    return deleted


def exported(values: Mapping[str, Any], failures: dict[str, str]) -> PluginExport:
    """What each plugin said it keeps (None: nothing), and which plugins failed or answered
    with something other than a mapping."""
    for plugin, value in values.items():
        if value is not None and not isinstance(value, Mapping):
            failures[plugin] = f"returned {type(value).__name__}, expected a mapping"
    data = {p: dict(v) for p, v in values.items() if isinstance(v, Mapping)}
    return PluginExport(data, failures)
