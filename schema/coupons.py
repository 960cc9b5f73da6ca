"""Coupons: campaigns and codes (merchant), validation (storefront) and redemption (merchant).

``validateCoupons`` prices the cart with the entered codes through the storefront's own engine
(`Storefront.price_order`) and says, for each code that gives no discount, why (a code from
`shopfront.offers.coupon_service.REFUSAL_CODES`). ``redeemCoupon`` (the checkout backend, merchant
key) prices the order's cart the same way and charges the coupon's real discount to the
campaign's budget, atomically; its ``idempotencyKey``, scoped to the API key and the shopper,
makes a retry return the first result. ``releaseCoupon`` undoes an order's redemptions (merchant
key: a public storefront key must not be able to free a used single-use code).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry
from shopfront.offers import campaigns, coupon_promotion, pricing
from shopfront.offers import coupon_service as svc
from shopfront.offers import redemption as redemptions
from shopfront.offers.contract import PricedCart as PricedCartModel
from shopfront.offers.pricing import PricingError
from shopfront.platform.money import Money as MoneyModel
from shopfront.schema.context import Context
from shopfront.schema.errors import ErrorCode, user_error
from shopfront.schema.pagination import (
    DEFAULT_FIRST,
    Connection,
    check_first,
    connection,
    decode_cursor,
    encode_cursor,
)
from shopfront.schema.permissions import (
    acting_shopper,
    merchant_field,
    merchant_mutation,
    storefront_field,
)
from shopfront.schema.promotions import (
    CartInput,
    ProductScope,
    ProductScopeInput,
    Segment,
    SegmentInput,
    cart_context,
    money_doc,
)
from shopfront.schema.scalars import Long
from shopfront.schema.storefront_types import PricedCart
from shopfront.schema.types import Money, MoneyInput
from shopfront.shoppers import privacy
from shopfront.shoppers.context import RequestContext
from strawberry.types import Info

log = logging.getLogger(__name__)

IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
ERASED = "userId: this shopper was erased; nothing is stored about them"
MAX_KEY_LEN = 200
MAX_CODES = 20  # entered codes per call; pricing refuses those past SHOPFRONT_MAX_COUPON_CODES


@strawberry.enum
class CouponDiscountKind(Enum):
    PERCENT = "percent"
    FIXED = "fixed"
    FREE_SHIPPING = "free_shipping"
    FREE_PRODUCT = "free_product"


@strawberry.enum(description="How a code may be used.")
class CouponCodeKind(Enum):
    SHARED = strawberry.enum_value("shared", description="Any shopper may enter it.")
    UNIQUE = strawberry.enum_value("unique", description="A generated single-use code.")
    PERSONAL = strawberry.enum_value("personal", description="Offered to one shopper.")


@strawberry.enum(description="Why a coupon code gives no discount.")
class CouponRefusal(Enum):
    UNKNOWN_CODE = campaigns.UNKNOWN_CODE
    INACTIVE = campaigns.INACTIVE
    NOT_STARTED = campaigns.NOT_STARTED
    EXPIRED = campaigns.EXPIRED
    MIN_SPEND_NOT_MET = campaigns.MIN_SPEND_NOT_MET
    MIN_QUANTITY_NOT_MET = campaigns.MIN_QUANTITY_NOT_MET
    NOT_ELIGIBLE = campaigns.NOT_ELIGIBLE
    USAGE_LIMIT_REACHED = campaigns.USAGE_LIMIT_REACHED
    PER_SHOPPER_LIMIT_REACHED = campaigns.PER_SHOPPER_LIMIT_REACHED
    BUDGET_EXHAUSTED = campaigns.BUDGET_EXHAUSTED
    DOES_NOT_COMBINE = campaigns.DOES_NOT_COMBINE
    ALREADY_REDEEMED = campaigns.ALREADY_REDEEMED
    TOO_MANY_CODES = campaigns.TOO_MANY_CODES
    # outcomes of the price chain the coupon runs in
    BETTER_DEAL = pricing.BETTER_DEAL
    NOT_CHOSEN = pricing.NOT_CHOSEN
    NOTHING_TO_DISCOUNT = pricing.NOTHING_TO_DISCOUNT
    UNAVAILABLE = pricing.UNAVAILABLE
    INVALID = pricing.INVALID
    NOT_APPLICABLE = pricing.NOT_APPLICABLE

    @classmethod
    def of(cls, code: str) -> CouponRefusal:
        try:
            return cls(code)
        except ValueError:
            # a code added to the engine but not here: still a refusal, never an error
            log.warning("coupon refusal code %r is not in CouponRefusal", code)
            return cls.NOT_APPLICABLE


@strawberry.enum(
    description="REDEEMED: charged to its campaign; RELEASED: undone (order cancelled)."
)
class CouponRedemptionStatus(Enum):
    REDEEMED = "redeemed"
    RELEASED = "released"


@strawberry.input(description="What a coupon gives.")
class CouponDiscountInput:
    kind: CouponDiscountKind
    percent: Decimal | None = None
    amount: MoneyInput | None = None
    max_amount: MoneyInput | None = strawberry.field(
        default=None, description="Caps a percentage discount."
    )
    product_id: strawberry.ID | None = strawberry.field(
        default=None, description="The free product (one unit, when it is in the cart)."
    )

    def to_doc(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "percent": str(self.percent) if self.percent is not None else None,
            "amount": money_doc(self.amount),
            "max_amount": money_doc(self.max_amount),
            "product_id": str(self.product_id) if self.product_id is not None else None,
        }


@strawberry.input(description="A coupon campaign's terms, keyed by the merchant's id.")
class CouponCampaignInput:
    id: strawberry.ID
    title: str
    currency: str
    discount: CouponDiscountInput
    description: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    min_spend: MoneyInput | None = None
    min_quantity: int | None = None
    eligible: ProductScopeInput | None = None
    segment: SegmentInput | None = None
    usage_limit: int | None = strawberry.field(default=None, description="Total redemptions.")
    per_shopper_limit: int | None = None
    budget: MoneyInput | None = strawberry.field(
        default=None, description="The campaign stops when the discounts given reach it."
    )
    combines_with_promotions: bool = False
    active: bool = True
    shared_code: str | None = strawberry.field(
        default=None, description="A code any shopper may enter (create only)."
    )

    def to_raw(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "title": self.title,
            "currency": self.currency,
            "discount": self.discount.to_doc(),
            "description": self.description,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "min_spend": money_doc(self.min_spend),
            "min_quantity": self.min_quantity,
            "eligible": self.eligible.to_doc() if self.eligible else None,
            "segment": self.segment.to_doc() if self.segment else None,
            "usage_limit": self.usage_limit,
            "per_shopper_limit": self.per_shopper_limit,
            "budget": money_doc(self.budget),
            "combines_with_promotions": self.combines_with_promotions,
            "active": self.active,
        }


@strawberry.input(description="A shared code for a campaign.")
class AddCouponCodeInput:
    campaign_id: strawberry.ID
    code: str


@strawberry.input(description="How many single-use codes to generate for a campaign.")
class GenerateCouponCodesInput:
    campaign_id: strawberry.ID
    count: int


@strawberry.input(description="The code to redeem, for which shopper, order and cart.")
class RedeemCouponInput:
    code: str
    user_id: strawberry.ID
    order_id: strawberry.ID
    idempotency_key: str = strawberry.field(
        description="The same key returns the first call's result (1-200 characters)."
    )
    cart: CartInput


@strawberry.input(description="The cancelled order whose redemptions to undo.")
class ReleaseCouponInput:
    order_id: strawberry.ID


@strawberry.type
class CouponDiscount:
    kind: CouponDiscountKind
    percent: Decimal | None
    amount: Money | None
    max_amount: Money | None
    product_id: strawberry.ID | None


@strawberry.type(description="A coupon campaign: its terms and what it has given so far.")
class CouponCampaign:
    id: strawberry.ID
    title: str
    description: str
    currency: str
    discount: CouponDiscount
    starts_at: datetime | None
    ends_at: datetime | None
    min_spend: Money | None
    min_quantity: int | None
    eligible: ProductScope
    segment: Segment | None
    usage_limit: int | None
    per_shopper_limit: int | None
    budget: Money | None
    combines_with_promotions: bool
    active: bool
    strategy: str | None = strawberry.field(description="The coupon strategy that owns it.")
    used: int
    discount_given: Money
    budget_left: Money | None
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, c: campaigns.Campaign) -> CouponCampaign:
        def money(m: MoneyModel | None) -> Money | None:
            return Money.of(m) if m is not None else None

        left = c.budget_left
        return cls(
            id=strawberry.ID(c.id),
            title=c.title,
            description=c.description,
            currency=c.currency,
            discount=CouponDiscount(
                kind=CouponDiscountKind(c.discount.kind.value),
                percent=c.discount.percent,
                amount=money(c.discount.amount),
                max_amount=money(c.discount.max_amount),
                product_id=strawberry.ID(c.discount.product_id) if c.discount.product_id else None,
            ),
            starts_at=c.starts_at,
            ends_at=c.ends_at,
            min_spend=money(c.min_spend),
            min_quantity=c.min_quantity,
            eligible=ProductScope.of(c.eligible),
            segment=Segment.from_doc(c.segment.to_doc()),
            usage_limit=c.usage_limit,
            per_shopper_limit=c.per_shopper_limit,
            budget=money(c.budget),
            combines_with_promotions=c.combines_with_promotions,
            active=c.active,
            strategy=c.strategy,
            used=c.used,
            discount_given=Money(amount=Long(c.discount_given), currency=c.currency),
            budget_left=Money(amount=Long(left), currency=c.currency) if left is not None else None,
            created_at=c.created_at,
            updated_at=c.updated_at,
        )


@strawberry.type
class CouponCode:
    code: str
    campaign_id: strawberry.ID
    kind: CouponCodeKind
    used: int
    max_uses: int | None
    expires_at: datetime | None

    @classmethod
    def of(cls, c: campaigns.CodeRecord) -> CouponCode:
        return cls(
            code=c.code,
            campaign_id=strawberry.ID(c.campaign_id),
            kind=CouponCodeKind(c.kind),
            used=c.used,
            max_uses=c.max_uses,
            expires_at=c.expires_at,
        )


@strawberry.type
class GenerateCouponCodesResult:
    campaign_id: strawberry.ID
    generated: int = strawberry.field(
        description="Codes created; export them with `shopfront coupons export`."
    )


@strawberry.type(description="One entered code: its discount, or why it gives none.")
class CouponCheck:
    code: str
    applies: bool
    discount: Money | None
    reason: str | None
    refusal: CouponRefusal | None = strawberry.field(
        description="Why it gives no discount (null when it applies)."
    )
    missing: Money | None = strawberry.field(description="Still to spend (MIN_SPEND_NOT_MET).")
    conflicts_with: list[str] = strawberry.field(
        description="The applied promotions it does not combine with (DOES_NOT_COMBINE)."
    )


@strawberry.type
class CouponValidation:
    cart: PricedCart
    coupons: list[CouponCheck]


@strawberry.type
class CouponRedemption:
    id: strawberry.ID
    campaign_id: strawberry.ID
    code: str
    user_id: strawberry.ID
    order_id: strawberry.ID
    amount: Money
    status: CouponRedemptionStatus
    redeemed_at: datetime
    released_at: datetime | None

    @classmethod
    def of(cls, r: redemptions.Redemption) -> CouponRedemption:
        return cls(
            id=strawberry.ID(r.id),
            campaign_id=strawberry.ID(r.campaign_id),
            code=r.code,
            user_id=strawberry.ID(r.user_id),
            order_id=strawberry.ID(r.order_id),
            amount=Money.of(r.amount),
            status=CouponRedemptionStatus(r.status),
            redeemed_at=r.redeemed_at,
            released_at=r.released_at,
        )


@strawberry.type(description="A redemption, or why the code was refused.")
class RedeemCouponResult:
    ok: bool
    refusal: CouponRefusal | None = strawberry.field(
        description="Why the code was refused (null when it was redeemed)."
    )
    message: str
    missing: Money | None
    conflicts_with: list[str]
    replayed: bool = strawberry.field(
        description="The recorded result of an earlier call with this idempotency key."
    )
    redemption: CouponRedemption | None

    @classmethod
    def of(cls, result: redemptions.RedeemResult) -> RedeemCouponResult:
        if result.redemption is not None:
            return cls(
                ok=True,
                refusal=None,
                message=f"{result.redemption.amount.format()} off",
                missing=None,
                conflicts_with=[],
                replayed=result.replayed,
                redemption=CouponRedemption.of(result.redemption),
            )
        refusal = result.refusal
        assert refusal is not None
        return cls(
            ok=False,
            refusal=CouponRefusal.of(refusal.code),
            message=refusal.message,
            missing=Money.of(refusal.missing) if refusal.missing else None,
            conflicts_with=list(refusal.conflicts),
            replayed=result.replayed,
            redemption=None,
        )


@strawberry.type
class ReleaseCouponResult:
    order_id: strawberry.ID
    released: list[CouponRedemption]
    already_released: list[CouponRedemption]


def _checks(cart: PricedCartModel, codes: list[str]) -> list[CouponCheck]:
    """Each entered code's result, from the priced cart."""
    checks: list[CouponCheck] = []
    for code in dict.fromkeys(campaigns.normalize_code(c) for c in codes if c.strip()):
        outcome = coupon_promotion.coupon_outcome(cart, code)
        if isinstance(outcome, MoneyModel):
            checks.append(
                CouponCheck(
                    code=code,
                    applies=True,
                    discount=Money.of(outcome),
                    reason=None,
                    refusal=None,
                    missing=None,
                    conflicts_with=[],
                )
            )
        else:
            checks.append(
                CouponCheck(
                    code=code,
                    applies=False,
                    discount=None,
                    reason=outcome.message,
                    refusal=CouponRefusal.of(outcome.code),
                    missing=Money.of(outcome.missing) if outcome.missing else None,
                    conflicts_with=list(outcome.conflicts),
                )
            )
    return checks


def _coupons(info: Info[Context, Any]) -> svc.CouponService:
    return info.context.runtime.coupons


@strawberry.type
class CouponsQuery:
    @merchant_field(description="Coupon campaigns in id order.")
    async def coupon_campaigns(
        self,
        info: Info[Context, Any],
        active: bool | None = None,
        first: int = DEFAULT_FIRST,
        after: str | None = None,
    ) -> Connection[CouponCampaign]:
        check_first(first, info.context.runtime.settings.max_page_size)
        last = decode_cursor("couponCampaigns", after, 1)[0] if after is not None else None
        found = await _coupons(info).list_campaigns(active=active, first=first + 1, after=last)
        return connection(
            found, first, lambda c: encode_cursor("couponCampaigns", (c.id,)), CouponCampaign.of
        )

    @merchant_field(description="One coupon campaign.")
    async def coupon_campaign(
        self, info: Info[Context, Any], id: strawberry.ID
    ) -> CouponCampaign | None:
        found = await _coupons(info).get_campaign(str(id))
        return CouponCampaign.of(found) if found else None

    @storefront_field(
        description="Price the cart with the entered codes; for each code that gives no "
        "discount, say why."
    )
    async def validate_coupons(
        self,
        info: Info[Context, Any],
        cart: CartInput,
        codes: list[str],
        user_id: strawberry.ID | None = None,
    ) -> CouponValidation:
        if len(codes) > MAX_CODES:
            raise user_error(f"codes: at most {MAX_CODES} codes per call")
        user = acting_shopper(info, _user(user_id))
        erased = info.context.runtime.erased
        if erased is not None and erased.any_erased(user):
            raise user_error(ERASED, code=ErrorCode.USER_ERASED)
        ctx, _ = await cart_context(info, cart, user, codes)
        priced = await price_order(info, ctx)
        return CouponValidation(cart=PricedCart.of(priced), coupons=_checks(priced, codes))


@strawberry.type
class CouponsMutation:
    @merchant_mutation(description="Create a coupon campaign (and its shared code, if given).")
    async def create_coupon_campaign(
        self, info: Info[Context, Any], input: CouponCampaignInput
    ) -> CouponCampaign:
        service = _coupons(info)
        try:
            campaign = await service.create_campaign(input.to_raw())
            if input.shared_code:
                await service.add_shared_code(campaign.id, input.shared_code)
        except campaigns.CouponError as exc:
            raise user_error(str(exc)) from None
        return CouponCampaign.of(campaign)

    @merchant_mutation(description="Replace a campaign's terms; its counters and codes stay.")
    async def update_coupon_campaign(
        self, info: Info[Context, Any], input: CouponCampaignInput
    ) -> CouponCampaign:
        if input.shared_code:
            raise user_error("sharedCode: add codes with addCouponCode")
        try:
            campaign = await _coupons(info).update_campaign(str(input.id), input.to_raw())
        except campaigns.CouponError as exc:
            raise user_error(str(exc)) from None
        return CouponCampaign.of(campaign)

    @merchant_mutation(description="Add a shared code any shopper may enter.")
    async def add_coupon_code(
        self, info: Info[Context, Any], input: AddCouponCodeInput
    ) -> CouponCode:
        campaign, code = input.campaign_id, input.code
        try:
            record = await _coupons(info).add_shared_code(str(campaign), code)
        except campaigns.CouponError as exc:
            raise user_error(str(exc)) from None
        return CouponCode.of(record)

    @merchant_mutation(
        description="Generate unique single-use codes (up to SHOPFRONT_MAX_GENERATED_CODES)."
    )
    async def generate_coupon_codes(
        self, info: Info[Context, Any], input: GenerateCouponCodesInput
    ) -> GenerateCouponCodesResult:
        campaign, count = input.campaign_id, input.count
        try:
            made = await _coupons(info).generate_codes(str(campaign), count)
        except campaigns.CouponError as exc:
            raise user_error(str(exc)) from None
        return GenerateCouponCodesResult(campaign_id=campaign, generated=made)

    @merchant_mutation(
        description="Redeem a code for an order (the checkout backend, merchant key): the cart "
        "is priced as the storefront priced it and the coupon's discount charged atomically. "
        "The same idempotencyKey (per key and shopper) returns the first result."
    )
    async def redeem_coupon(
        self, info: Info[Context, Any], input: RedeemCouponInput
    ) -> RedeemCouponResult:
        code, user_id, order_id = input.code, input.user_id, input.order_id
        idempotency_key, cart = input.idempotency_key, input.cart
        service = _coupons(info)
        user = _user(user_id)
        if user is None:
            raise user_error("userId: is required")
        if await privacy.is_erased(info.context.runtime.store, user):
            raise user_error(ERASED, code=ErrorCode.USER_ERASED)
        if not str(order_id).strip():
            raise user_error("orderId: is required")
        key = idempotency_key.strip()
        if not 1 <= len(key) <= MAX_KEY_LEN:
            raise user_error(f"idempotencyKey: must be 1-{MAX_KEY_LEN} characters")
        normalized = campaigns.normalize_code(code)
        request = redemptions.RedeemRequest(
            code=normalized,
            user_id=user,
            order_id=str(order_id),
            idempotency_key=_scoped_key(info, user, key),
            fingerprint=campaigns.fingerprint(normalized, user, str(order_id), cart.canonical()),
        )
        try:
            earlier = await service.recorded(request)
            if earlier is not None:
                return RedeemCouponResult.of(earlier)
            ctx, _ = await cart_context(info, cart, user, [normalized])
            priced = await price_order(info, ctx)
            result = await service.redeem(
                request, coupon_promotion.coupon_outcome(priced, normalized)
            )
        except campaigns.IdempotencyKeyReused as exc:
            raise user_error(str(exc), code=ErrorCode.IDEMPOTENCY_KEY_REUSED) from None
        return RedeemCouponResult.of(result)

    @merchant_mutation(description="Undo the coupon redemptions of a cancelled order (idempotent).")
    async def release_coupon(
        self, info: Info[Context, Any], input: ReleaseCouponInput
    ) -> ReleaseCouponResult:
        order_id = input.order_id
        result = await _coupons(info).release(str(order_id))
        return ReleaseCouponResult(
            order_id=order_id,
            released=[CouponRedemption.of(r) for r in result.released],
            already_released=[CouponRedemption.of(r) for r in result.already_released],
        )


async def price_order(info: Info[Context, Any], ctx: RequestContext) -> PricedCartModel:
    """The cart priced by the storefront's own engine (`Storefront.price_order`): the same
    promotions, stacking, shipping and experiment overrides as the storefront answer."""
    composer = info.context.runtime.storefront
    if composer is None:
        raise user_error("the storefront is not running", ErrorCode.SERVICE_UNAVAILABLE)
    try:
        return await composer.price_order(ctx)
    except PricingError as exc:
        raise user_error(str(exc)) from None


def _scoped_key(info: Info[Context, Any], user: str, key: str) -> str:
    """The stored idempotency key: the caller's key scoped to its API key and the shopper, so
    no caller can claim (or squat) another's."""
    principal = info.context.principal
    scope = f"{principal.id if principal else '-'}\x00{user}"
    return f"{hashlib.sha256(scope.encode()).hexdigest()[:24]}:{key}"


def _user(user_id: strawberry.ID | None) -> str | None:
    text = str(user_id).strip() if user_id is not None else ""
    return text or None
