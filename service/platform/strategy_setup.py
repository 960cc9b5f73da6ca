"""What a strategy factory receives: its validated config, the settings, the store."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shopfront.platform.config import Settings
    from shopfront.platform.store import Store


# -- registration --------------------------------------------------------------------------


@dataclass(frozen=True)
class StrategySetup:
    """What a factory receives: its validated config, the service settings, and the store."""

    name: str
    config: Mapping[str, Any]
    settings: Settings
    store: Store
    log: logging.Logger
