"""Built-in cart promotions, written against the same hooks a merchant's plugin uses.

Each module is one promotion *type* (a `PromotionSpec` with ``managed=True``): merchants
create as many promotions of a type as they like through the API (``upsertPromotion``), each
validated by the type's ``build`` and effective on every instance within seconds, without a
restart. Copy a module to write your own type: a frozen dataclass with ``terms`` and an async
``apply``, a ``build(setup)`` that validates its ``params``, and a ``SPEC``.

This package also provides the default stacking policy: the best deal for the shopper (see
`plugins.promotions.stacking`).
"""

from __future__ import annotations

from collections.abc import Sequence

from shopfront import (
    PricedCart,
    PromotionSpec,
    PromotionTerms,
    RequestContext,
    StackingPlan,
    hookimpl,
)
from shopfront.plugins.promotions import (
    bundle,
    buy_x_get_y,
    free_shipping,
    item_discount,
    n_for_m,
    order_discount,
    tiered_spend,
)
from shopfront.plugins.promotions.stacking import best_deal

PROMOTION_TYPES: tuple[PromotionSpec, ...] = (
    order_discount.SPEC,
    item_discount.SPEC,
    buy_x_get_y.SPEC,
    tiered_spend.SPEC,
    free_shipping.SPEC,
    bundle.SPEC,
    n_for_m.SPEC,
)


@hookimpl
def register_promotions() -> Sequence[PromotionSpec]:
    return PROMOTION_TYPES


@hookimpl(trylast=True)
def promotion_stacking(
    ctx: RequestContext, cart: PricedCart, promotions: Sequence[PromotionTerms]
) -> StackingPlan:
    return best_deal(promotions)
