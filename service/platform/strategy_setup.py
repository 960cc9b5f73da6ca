"""What a strategy factory receives: its validated config, the settings, the store."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from shopfront.platform.config_schema import SettingError, parse_settings

if TYPE_CHECKING:
    from shopfront.platform.config import Settings
    from shopfront.platform.store import Store


# -- registration --------------------------------------------------------------------------


C = TypeVar("C")


@dataclass(frozen=True)
class StrategySetup:
    """What a factory receives: its validated config, the service settings, and the store.

    ``config`` is the strategy's effective configuration as plain values (defaults overlaid
    with the config file, secrets resolved). A spec that declares ``config_type`` reads it
    typed with `config_as`.
    """

    name: str
    config: Mapping[str, Any]
    settings: Settings
    store: Store
    log: logging.Logger
    declared: Any = None  # the config_type instance the host validated, if the spec has one

    def config_as(self, config_type: type[C]) -> C:
        """The configuration as an instance of the settings dataclass ``config_type``: the one
        the host already validated when the spec declares it, else parsed from ``config``
        (a `ValueError` naming the setting when it does not fit)."""
        if isinstance(self.declared, config_type):
            return self.declared
        try:
            return parse_settings(config_type, self.config)
        except SettingError as exc:
            raise ValueError(f"strategy {self.name!r}: {exc}") from None
