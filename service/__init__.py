"""Shopfront: a personalization microservice for online stores."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("shopfront")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
