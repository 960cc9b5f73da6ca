"""The per-request GraphQL context: who is asking, and the service's shared objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shopfront.platform.keys import ApiKey, Role
from shopfront.runtime import Runtime
from starlette.requests import Request


@dataclass
class Context:
    runtime: Runtime
    request: Request | None
    request_id: str
    principal: ApiKey | None = None
    # Why the key was refused, when one was sent but is unknown or revoked.
    auth_problem: str | None = None
    # Per-request DataLoaders and caches, by name (one profile read per request).
    loaders: dict[str, Any] = field(default_factory=dict)

    @property
    def role(self) -> Role | None:
        return self.principal.role if self.principal else None
