"""Shopfront: a personalization microservice for online stores.

The public plugin API is importable from here (``from shopfront import hookimpl, Recommender``);
see `shopfront.extend.api` for the list. Names load on first use, so ``import shopfront.cli``
stays cheap and the package's own modules never import this facade.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("shopfront")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

if TYPE_CHECKING:  # the public names, for type checkers and IDEs (`shopfront.extend.api`)
    from shopfront.extend.api import *  # noqa: F403


def __getattr__(name: str) -> Any:
    api = import_module("shopfront.extend.api")
    if name == "__all__":
        return list(api.__all__)
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'shopfront' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *import_module("shopfront.extend.api").__all__])
