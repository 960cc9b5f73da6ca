"""The running service's shared objects, built once at start-up and handed to every request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.config import Settings
from service.store import Store


@dataclass
class Runtime:
    """What the app's lifespan opens: settings, the store, and components that later modules
    register under a name (plugin host, model registry, ...) so the app stays the only owner
    of their lifecycle."""

    settings: Settings
    store: Store
    components: dict[str, Any] = field(default_factory=dict)
    draining: bool = False
