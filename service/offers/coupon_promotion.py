"""A coupon applied to a cart: the promotion that prices a validated code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shopfront.offers.contract import (
    NotApplied,
    Nudge,
    PricedCart,
    PricedLine,
    ProductScope,
    PromotionClass,
    PromotionOutcome,
    PromotionTerms,
    Stacking,
)
from shopfront.offers.rules import (
    describe_scope,
)
from shopfront.platform.money import Money, allocate
from shopfront.shoppers.context import RequestContext

if TYPE_CHECKING:
    pass
from shopfront.offers.campaigns import (
    BUDGET_EXHAUSTED,
    COUPON_PRIORITY,
    MIN_QUANTITY_NOT_MET,
    MIN_SPEND_NOT_MET,
    NOT_ELIGIBLE,
    Campaign,
    DiscountKind,
    normalize_code,
)
from shopfront.offers.redemption import Refusal

# -- a code in the price chain -------------------------------------------------------------


@dataclass(frozen=True)
class CouponPromotion:
    """An entered code as a promotion of class ``coupon``, priced after the promotions.

    Minimum spend and quantity count the eligible lines (what the shopper still pays for
    them after the promotions before it). A campaign that does not combine with promotions is
    exclusive; coupons never combine with each other (one code per order).
    """

    code: str
    campaign: Campaign

    @property
    def terms(self) -> PromotionTerms:
        together = frozenset(
            {PromotionClass.ORDER, PromotionClass.PRODUCT, PromotionClass.SHIPPING}
        )
        combines = self.campaign.combines_with_promotions
        return PromotionTerms(
            name=f"coupon:{self.code}",
            title=self.campaign.title,
            klass=PromotionClass.COUPON,
            priority=COUPON_PRIORITY,
            stacking=Stacking.CLASSES if combines else Stacking.EXCLUSIVE,
            combines_with=together if combines else frozenset(),
        )

    async def apply(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        campaign = self.campaign
        if cart.currency != campaign.currency:
            return _refused(NOT_ELIGIBLE, f"this code is for {campaign.currency} orders")
        lines = _eligible(ctx, priced_so_far.lines, campaign.eligible)
        scope = describe_scope(campaign.eligible)
        if not lines:
            return _refused(NOT_ELIGIBLE, f"this code is for {scope} only")
        count = sum(line.quantity for line in lines)
        if campaign.min_quantity is not None and count < campaign.min_quantity:
            return _refused(
                MIN_QUANTITY_NOT_MET, f"this code needs at least {campaign.min_quantity} items"
            )
        spent = sum(line.total.amount for line in lines)
        if campaign.min_spend is not None and spent < campaign.min_spend.amount:
            missing = Money(campaign.min_spend.amount - spent, cart.currency)
            nudge = Nudge(
                promotion=self.terms.name,
                text=f"Add {missing.format()} to use code {self.code}",
                missing=missing,
                kind="coupon_min_spend",
                threshold=campaign.min_spend,
                eligible=campaign.eligible,
            )
            return PromotionOutcome(
                applied=False,
                reason=f"spend {missing.format()} more to use this code",
                code=MIN_SPEND_NOT_MET,
                missing=missing,
                nudge=nudge,
            )
        outcome = self._discount(lines, spent, priced_so_far)
        left = campaign.budget_left
        given = sum(outcome.line_discounts.values()) + outcome.shipping_discount
        if outcome.applied and left is not None and given > left:
            return _refused(BUDGET_EXHAUSTED, "this offer has run out")
        return outcome

    def _discount(
        self, lines: Sequence[PricedLine], spent: int, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        discount = self.campaign.discount
        currency = priced_so_far.currency
        if discount.kind is DiscountKind.FREE_SHIPPING:
            left = priced_so_far.shipping.amount - priced_so_far.shipping_discount.amount
            if left <= 0:
                return _refused(NOT_ELIGIBLE, "shipping is already free")
            return PromotionOutcome(applied=True, shipping_discount=left)
        if discount.kind is DiscountKind.FREE_PRODUCT:
            gift = next((ln for ln in lines if ln.product_id == discount.product_id), None)
            if gift is None:
                return _refused(NOT_ELIGIBLE, "add the gift to your cart to get it free")
            return _spent_on({gift.index: min(gift.unit_price.amount, gift.total.amount)})
        if discount.kind is DiscountKind.PERCENT:
            assert discount.percent is not None
            amount = Money(spent, currency).percent(discount.percent).amount
            if discount.max_amount is not None:
                amount = min(amount, discount.max_amount.amount)
        else:
            assert discount.amount is not None
            amount = min(discount.amount.amount, spent)
        parts = allocate(amount, [line.total.amount for line in lines])
        return _spent_on({ln.index: p for ln, p in zip(lines, parts, strict=True)})


def _spent_on(line_discounts: Mapping[int, int]) -> PromotionOutcome:
    discounts = {i: a for i, a in line_discounts.items() if a > 0}
    if not discounts:
        return _refused(NOT_ELIGIBLE, "nothing in the cart left to discount")
    return PromotionOutcome(applied=True, line_discounts=discounts)


def _refused(code: str, reason: str) -> PromotionOutcome:
    return PromotionOutcome(applied=False, reason=reason, code=code)


def _eligible(
    ctx: RequestContext, lines: Sequence[PricedLine], scope: ProductScope
) -> list[PricedLine]:
    if scope.everything:
        return list(lines)
    return [
        line
        for line in lines
        if (product := ctx.products.get(line.product_id)) is not None and scope.matches(product)
    ]


def coupon_outcome(cart: PricedCart, code: str) -> Money | Refusal:
    """What an entered code gave on a priced cart: its discount, or why it gave none."""
    name = f"coupon:{normalize_code(code)}"
    for applied in cart.applied:
        if applied.name == name:
            return applied.amount
    for missed in cart.not_applied:
        if missed.name == name:
            return Refusal.of(missed)
    return Refusal(NOT_ELIGIBLE, "this code gives no discount")


def _not_applied(code: str, reason_code: str, message: str) -> NotApplied:
    return NotApplied(name=f"coupon:{code}", reason=message, code=reason_code)
