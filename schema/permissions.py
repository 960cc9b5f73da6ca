"""Per-field roles. Every query and mutation declares the role it needs, through
`storefront_field` / `merchant_field`; the authorization test walks the schema and fails when a
root field was added without one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import strawberry
from shopfront.platform.keys import Role
from shopfront.schema.context import Context
from shopfront.schema.errors import ErrorCode, coded_error
from strawberry.permission import BasePermission
from strawberry.types import Info


class _RequiresRole(BasePermission):
    role: Role

    def has_permission(self, source: Any, info: Info[Context, Any], **kwargs: Any) -> bool:
        ctx = info.context
        if ctx.principal is None:
            reason = ctx.auth_problem or "an API key is required: send Authorization: Bearer <key>"
            raise coded_error(reason, ErrorCode.UNAUTHENTICATED)
        if not ctx.principal.role.allows(self.role):
            raise coded_error(
                f"this operation needs a {self.role.value} key; "
                f"the key {ctx.principal.name!r} is a {ctx.principal.role.value} key",
                ErrorCode.FORBIDDEN,
            )
        return True


class StorefrontKey(_RequiresRole):
    """Storefront or merchant key."""

    role = Role.STOREFRONT


class MerchantKey(_RequiresRole):
    """Merchant key only."""

    role = Role.MERCHANT


F = TypeVar("F", bound=Callable[..., Any])


def storefront_field(**kwargs: Any) -> Callable[[F], F]:
    """A query field any valid key may call."""
    return cast(Callable[[F], F], strawberry.field(permission_classes=[StorefrontKey], **kwargs))


def merchant_field(**kwargs: Any) -> Callable[[F], F]:
    """A query field only a merchant key may call."""
    return cast(Callable[[F], F], strawberry.field(permission_classes=[MerchantKey], **kwargs))


def storefront_mutation(**kwargs: Any) -> Callable[[F], F]:
    return cast(Callable[[F], F], strawberry.mutation(permission_classes=[StorefrontKey], **kwargs))


def merchant_mutation(**kwargs: Any) -> Callable[[F], F]:
    return cast(Callable[[F], F], strawberry.mutation(permission_classes=[MerchantKey], **kwargs))


def declared_role(field: Any) -> Role | None:
    """The role a schema field was declared with, or None (the authorization test uses it)."""
    for permission in getattr(field, "permission_classes", ()) or ():
        if isinstance(permission, type) and issubclass(permission, _RequiresRole):
            return permission.role
    return None
