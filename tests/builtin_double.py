"""A module standing in for a built-in plugin package (hookimpls at module level)."""

from __future__ import annotations

from collections.abc import Sequence

from shopfront.extend.hookspecs import hookimpl
from shopfront.recommend.contract import RecommenderSpec

from tests.plugin_doubles import list_recommender


@hookimpl
def register_recommenders() -> Sequence[RecommenderSpec]:
    return [list_recommender("builtin_listed", ["p1"])]
