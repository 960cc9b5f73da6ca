"""Shopper tokens: the merchant's backend mints one per logged-in shopper (`createShopperToken`)
and the storefront sends it as ``X-Shopper-Token`` (see shopfront.shoppers.identity)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from shopfront.schema.context import Context
from shopfront.schema.errors import ErrorCode, user_error
from shopfront.schema.gate import shopper_tokens
from shopfront.schema.permissions import merchant_mutation
from shopfront.shoppers.identity import DEFAULT_TTL_S, TokenError, TokensNotConfigured
from strawberry.types import Info


@strawberry.input(description="Who the token is for, and for how long.")
class ShopperTokenInput:
    user_id: strawberry.ID = strawberry.field(description="The shopper (the token's sub).")
    session_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The shopper's session (the token's sid); `identify` needs it.",
    )
    ttl_seconds: int = strawberry.field(
        default=DEFAULT_TTL_S, description="Lifetime in seconds: 1 to 86400 (default 3600)."
    )


@strawberry.type(description="A signed shopper token; send it as the X-Shopper-Token header.")
class ShopperToken:
    token: str
    expires_at: datetime


@strawberry.type
class IdentityMutation:
    @merchant_mutation(
        description="Mint a shopper token (an HS256 JWT) for a logged-in shopper; the "
        "storefront sends it as X-Shopper-Token so a storefront key may act for that shopper."
    )
    async def create_shopper_token(
        self, info: Info[Context, Any], input: ShopperTokenInput
    ) -> ShopperToken:
        session = str(input.session_id) if input.session_id is not None else None
        try:
            token, expires = shopper_tokens(info.context).mint(
                str(input.user_id), session, input.ttl_seconds
            )
        except TokensNotConfigured as exc:
            raise user_error(str(exc), ErrorCode.NOT_CONFIGURED) from None
        except TokenError as exc:
            raise user_error(str(exc)) from None
        return ShopperToken(token=token, expires_at=expires)
