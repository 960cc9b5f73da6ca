"""The storefront query: one composed answer per page view."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from shopfront.platform.keys import Role
from shopfront.schema.context import Context
from shopfront.schema.errors import UNAVAILABLE, user_error
from shopfront.schema.permissions import FORBIDDEN, storefront_field
from shopfront.schema.storefront_types import Storefront, StorefrontInput
from shopfront.storefront import request, sources
from strawberry.types import Info


@strawberry.type
class StorefrontQuery:
    @storefront_field(
        description="Recommendation slots with reasons, coupon offers and the priced cart for "
        "one shopper on one page. Strategies that fail or are late are left out and named in "
        "`degraded`."
    )
    async def storefront(self, info: Info[Context, Any], input: StorefrontInput) -> Storefront:
        ctx = info.context
        if input.preview is not None and not (
            ctx.principal is not None and ctx.principal.role.allows(Role.MERCHANT)
        ):
            raise GraphQLError("preview needs a merchant key", extensions={"code": FORBIDDEN})
        composer = ctx.runtime.storefront
        if composer is None:
            raise user_error("the storefront is not running", code=UNAVAILABLE)
        loader = ctx.loaders.get("products")
        if loader is None:
            loader = ctx.loaders["products"] = sources.product_loader(
                ctx.runtime.store, ctx.runtime.catalog
            )
        try:
            result = await composer.compose(
                input.to_request(), request_id=ctx.request_id, loader=loader
            )
        except request.StorefrontInputError as exc:
            raise user_error(str(exc), code=exc.code) from None
        return Storefront.of(result)
