"""The storefront query: one composed answer per page view."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import strawberry
from shopfront.platform.keys import Role
from shopfront.schema.context import Context
from shopfront.schema.errors import ErrorCode, user_error
from shopfront.schema.permissions import acting_shopper, checked_session, storefront_field
from shopfront.schema.storefront_types import Storefront, StorefrontInput
from shopfront.storefront import request, sources
from strawberry.types import Info


@strawberry.type
class StorefrontQuery:
    @storefront_field(
        description="Recommendation slots with reasons, coupon offers and the priced cart for "
        "one shopper on one page. Strategies that fail or are late are left out and named in "
        "`degraded`. With a storefront key, a userId needs the shopper's X-Shopper-Token "
        "(userId may then be left out); anonymous shoppers send an unguessable sessionId."
    )
    async def storefront(self, info: Info[Context, Any], input: StorefrontInput) -> Storefront:
        ctx = info.context
        if ctx.request is not None and ctx.request.method == "GET":
            # It records what was served (attribution, exposures): not a safe, cacheable GET.
            raise user_error(
                "storefront has side effects and is served over POST only",
                ErrorCode.POST_REQUIRED,
            )
        if input.preview is not None and not (
            ctx.principal is not None and ctx.principal.role.allows(Role.MERCHANT)
        ):
            raise user_error("preview needs a merchant key", ErrorCode.FORBIDDEN)
        user = acting_shopper(info, _text(input.user_id))
        session = checked_session(info, _text(input.session_id), "sessionId")
        composer = ctx.runtime.storefront
        if composer is None:
            raise user_error("the storefront is not running", code=ErrorCode.SERVICE_UNAVAILABLE)
        loader = ctx.loaders.get("products")
        if loader is None:
            loader = ctx.loaders["products"] = sources.product_loader(
                ctx.runtime.store, ctx.runtime.catalog
            )
        try:
            result = await composer.compose(
                replace(input.to_request(), user_id=user, session_id=session),
                request_id=ctx.request_id,
                loader=loader,
            )
        except request.StorefrontInputError as exc:
            raise user_error(str(exc), ErrorCode(exc.code)) from None
        return Storefront.of(result)


def _text(value: strawberry.ID | None) -> str | None:
    return str(value) if value is not None else None
