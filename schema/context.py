"""The per-request GraphQL context: who is asking, and the service's shared objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shopfront.platform.keys import ApiKey, Role
from shopfront.runtime import Runtime
from shopfront.shoppers.identity import ShopperClaims
from starlette.requests import Request


@dataclass
class Context:
    runtime: Runtime
    request: Request | None
    request_id: str
    principal: ApiKey | None = None
    # Why the key was refused, when one was sent but is unknown or revoked.
    auth_problem: str | None = None
    # The verified X-Shopper-Token, or why the one sent cannot be used (schema/gate.py).
    shopper: ShopperClaims | None = None
    shopper_problem: str | None = None
    # Per-request DataLoaders and caches, by name (one profile read per request).
    loaders: dict[str, Any] = field(default_factory=dict)

    @property
    def role(self) -> Role | None:
        return self.principal.role if self.principal else None

    @property
    def is_merchant(self) -> bool:
        """A merchant key: server-side, it may act for any shopper."""
        return self.principal is not None and self.principal.role is Role.MERCHANT
