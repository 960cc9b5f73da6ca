"""Per-field roles. Every query and mutation declares the role it needs, through
`storefront_field` / `merchant_field`; the authorization test walks the schema and fails when a
root field was added without one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import strawberry
from graphql import GraphQLError
from shopfront.platform.keys import Role
from shopfront.schema.context import Context
from shopfront.schema.errors import ErrorCode, coded_error
from shopfront.shoppers.identity import session_id_problem
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


# -- the shopper a call is about ----------------------------------------------------------

SEND_TOKEN = (
    "send X-Shopper-Token: a shopper token for this shopper, minted by your backend "
    "(createShopperToken with the merchant key, or a JWT signed with a "
    "SHOPFRONT_SHOPPER_TOKEN_SECRETS secret)"
)


def _token_missing(ctx: Context, what: str) -> GraphQLError:
    why = (
        f"the shopper token cannot be used: {ctx.shopper_problem}; " if ctx.shopper_problem else ""
    )
    return coded_error(
        f"{what} needs a shopper token with a storefront key: {why}{SEND_TOKEN}",
        ErrorCode.UNAUTHENTICATED,
    )


def _other_shopper(what: str, given: str) -> GraphQLError:
    return coded_error(
        f"{what}: the shopper token is for another shopper than {given!r}; send a token whose "
        "sub is this userId, or leave userId out to act for the token's shopper",
        ErrorCode.FORBIDDEN,
    )


def acting_shopper(
    info: Info[Context, Any], user_id: str | None, *, what: str = "userId", required: bool = False
) -> str | None:
    """The shopper a call is about, checked against the caller's credentials.

    A merchant key acts for any shopper (``user_id`` as given). A storefront key needs a valid
    ``X-Shopper-Token``: ``user_id`` may be left out (the token's ``sub`` is used) and, when
    given, must equal it. Without a token the call is anonymous (None) unless ``user_id`` was
    given or ``required``. A token that was sent but cannot be used (expired, unknown secret,
    forged) is always refused, so a shopper never silently becomes anonymous.
    """
    ctx = info.context
    given = user_id.strip() if user_id is not None else None
    given = given or None
    if ctx.is_merchant:
        if required and given is None:
            raise coded_error(f"{what}: is required", ErrorCode.BAD_USER_INPUT)
        return given
    if ctx.shopper_problem is not None:
        raise _token_missing(ctx, what)
    claims = ctx.shopper
    if claims is None:
        if given is not None or required:
            raise _token_missing(ctx, what)
        return None
    if given is not None and given != claims.user_id:
        raise _other_shopper(what, given)
    return claims.user_id


def identified_session(
    info: Info[Context, Any], user_id: str | None, session_id: str | None
) -> tuple[str, str]:
    """``identify``'s (session, shopper): a merchant key names both; a storefront key needs a
    shopper token carrying both ``sub`` and ``sid``, which the arguments (optional) must match."""
    ctx = info.context
    session = (session_id or "").strip() or None
    if ctx.is_merchant:
        user = acting_shopper(info, user_id, required=True)
        if session is None:
            raise coded_error("sessionId: is required", ErrorCode.BAD_USER_INPUT)
        assert user is not None
        return session, user
    user = acting_shopper(info, user_id, what="identify", required=True)
    claims = ctx.shopper
    assert user is not None and claims is not None
    if claims.session_id is None:
        raise coded_error(
            "identify: the shopper token carries no sid; mint one with the shopper's sessionId "
            "(createShopperToken(input: {userId, sessionId})) so only that session is linked",
            ErrorCode.FORBIDDEN,
        )
    problem = session_id_problem(claims.session_id)
    if problem:
        raise coded_error(f"identify: the token's sid {problem}", ErrorCode.BAD_USER_INPUT)
    if session is not None and session != claims.session_id:
        raise coded_error(
            f"identify: the shopper token is for another session than {session!r}; send a token "
            "whose sid is this sessionId, or leave sessionId out",
            ErrorCode.FORBIDDEN,
        )
    return claims.session_id, user


def checked_session(info: Info[Context, Any], session_id: str | None, where: str) -> str | None:
    """``session_id`` when a storefront key may use it: unguessable (at least 128 random
    bits). A merchant key's session ids are its own business."""
    if session_id is None or info.context.is_merchant:
        return session_id
    problem = session_id_problem(session_id)
    if problem:
        raise coded_error(f"{where}: {problem}", ErrorCode.BAD_USER_INPUT)
    return session_id
