"""GraphQL types of the storefront query: its input and the composed answer.

Frontends code against these names (see issue 4's query); fields may be added, never renamed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import strawberry
from shopfront.catalog.products import Product as ProductModel
from shopfront.extend.records import Degradation
from shopfront.offers import contract as offers_contract
from shopfront.recommend import contract as recommend_contract
from shopfront.schema.errors import user_error
from shopfront.schema.scalars import Long

# One PageType enum for the whole schema (events and storefront), values as in plugin_api.
from shopfront.schema.types import Money, PageType, Product
from shopfront.shoppers import context as shoppers_context
from shopfront.storefront import answer as storefront_answer
from shopfront.storefront import cart_lines
from shopfront.storefront import request as storefront_request


@strawberry.input(description="One cart line: a product and how many.")
class CartLineInput:
    product_id: strawberry.ID
    quantity: int


@strawberry.input(description="The shopper's cart as the storefront holds it.")
class CartInput:
    lines: list[CartLineInput] = strawberry.field(default_factory=list)
    coupon_codes: list[str] = strawberry.field(
        default_factory=list, description="Coupon codes the shopper entered."
    )


@strawberry.input(
    description="Ask for a slot by name; a strategy replaces the slot's strategies, a limit "
    "(at most 50) its size. A name that is not configured needs a strategy."
)
class SlotOverrideInput:
    name: str
    strategy: str | None = None
    limit: int | None = None


@strawberry.input(description="An experiment variant a preview shows instead of the shopper's own.")
class PreviewVariantInput:
    experiment: str = strawberry.field(description="A running experiment's name or id.")
    variant: str


@strawberry.input(description="A merchant's preview of a storefront answer.")
class StorefrontPreviewInput:
    variants: list[PreviewVariantInput] = strawberry.field(
        default_factory=list,
        description="Show these variants of running experiments (the shopper's own otherwise).",
    )


@strawberry.input(description="What the storefront shows, to whom, on which page.")
class StorefrontInput:
    page: PageType
    user_id: strawberry.ID | None = None
    session_id: strawberry.ID | None = None
    product_id: strawberry.ID | None = strawberry.field(
        default=None, description="Required on a PRODUCT page."
    )
    category_path: list[str] | None = strawberry.field(
        default=None, description="Required on a CATEGORY page."
    )
    search_query: str | None = None
    cart: CartInput | None = None
    currency: str | None = strawberry.field(
        default=None, description="ISO 4217 code; default: the service's default currency."
    )
    slots: list[SlotOverrideInput] | None = strawberry.field(
        default=None,
        description="The slots to fill, in order (default: the page's configured slots).",
    )
    preview: StorefrontPreviewInput | None = strawberry.field(
        default=None,
        description="Merchant keys only: a preview of what the shopper would see, recorded "
        "nowhere (no served recommendation, no experiment exposure).",
    )

    def to_request(self) -> storefront_request.StorefrontRequest:
        cart = self.cart or CartInput()
        return storefront_request.StorefrontRequest(
            page=shoppers_context.PageType(self.page.value),
            user_id=str(self.user_id) if self.user_id is not None else None,
            session_id=str(self.session_id) if self.session_id is not None else None,
            product_id=str(self.product_id) if self.product_id is not None else None,
            category_path=tuple(self.category_path) if self.category_path is not None else None,
            search_query=self.search_query,
            cart_lines=tuple(
                shoppers_context.CartLine(str(line.product_id), line.quantity)
                for line in cart.lines
            ),
            coupon_codes=tuple(cart.coupon_codes),
            currency=self.currency,
            slots=(
                tuple(
                    storefront_request.SlotOverride(s.name, s.strategy, s.limit) for s in self.slots
                )
                if self.slots is not None
                else None
            ),
            preview=self.preview is not None,
            variants=tuple((v.experiment, v.variant) for v in self.preview.variants)
            if self.preview is not None
            else (),
        )


@strawberry.type(description="Why an item or offer is shown.")
class Reason:
    code: str = strawberry.field(description="Machine-readable, e.g. VIEWED_SIMILAR.")
    text: str = strawberry.field(description="For the shopper, e.g. 'Because you viewed X'.")
    strategy: str = strawberry.field(description="The strategy that gave the reason.")

    @classmethod
    def of(cls, r: recommend_contract.Reason) -> Reason:
        return cls(code=r.code, text=r.text, strategy=r.strategy)


@strawberry.type
class RecommendationItem:
    position: int = strawberry.field(description="1-based position in the slot.")
    score: float
    product: Product
    reasons: list[Reason]


@strawberry.type(description="One recommendation slot of the page.")
class RecommendationSlot:
    name: str
    title: str
    recommendation_id: str = strawberry.field(
        description="Quote it in events (click, add to cart, purchase) for attribution."
    )
    items: list[RecommendationItem]

    @classmethod
    def of(cls, s: storefront_answer.SlotResult) -> RecommendationSlot:
        return cls(
            name=s.name,
            title=s.title,
            recommendation_id=s.recommendation_id,
            items=[
                RecommendationItem(
                    position=i.position,
                    score=i.score,
                    product=Product.of(i.product),
                    reasons=[Reason.of(r) for r in i.reasons],
                )
                for i in s.items
            ],
        )


@strawberry.type(description="A coupon offered to this shopper.")
class CouponOffer:
    code: str
    title: str
    expires_at: datetime | None
    reason: Reason
    strategy: str

    @classmethod
    def of(cls, o: offers_contract.CouponOffer) -> CouponOffer:
        return cls(
            code=o.code,
            title=o.title,
            expires_at=o.expires_at,
            reason=Reason.of(o.reason),
            strategy=o.strategy,
        )


@strawberry.type(description="A priced cart line.")
class PricedCartLine:
    index: int
    product_id: strawberry.ID
    product: Product | None
    quantity: int
    unit_price: Money
    subtotal: Money
    discount: Money
    total: Money


CartLineErrorCode = strawberry.enum(
    cart_lines.CartLineErrorCode,
    description="Why a cart line was left out of the priced cart.",
)


@strawberry.type(
    description="A cart line that could not be priced; the rest of the cart is priced without it."
)
class CartLineError:
    index: int = strawberry.field(description="The line's index in the request's `cart.lines`.")
    product_id: strawberry.ID
    quantity: int
    code: CartLineErrorCode  # type: ignore[valid-type]
    message: str

    @classmethod
    def of(cls, e: cart_lines.CartLineError) -> CartLineError:
        return cls(
            index=e.index,
            product_id=strawberry.ID(e.product_id),
            quantity=e.quantity,
            code=e.code,
            message=e.message,
        )


@strawberry.type(description="What one promotion took off one cart line.")
class LineDiscount:
    index: int
    amount: Money


@strawberry.type(description="A promotion or coupon applied to the cart and what it took off.")
class AppliedPromotion:
    name: str
    title: str
    amount: Money
    source: str = strawberry.field(description='"promotion" or "coupon:<CODE>".')
    lines: list[LineDiscount]
    shipping_amount: Money


@strawberry.type(description="A promotion or coupon that gave no discount, and why.")
class NotAppliedPromotion:
    name: str
    reason: str
    code: str
    missing: Money | None = strawberry.field(description="Still to spend, when that is why.")
    conflicts_with: list[str] = strawberry.field(
        description="The applied promotions it does not combine with."
    )


@strawberry.type(description="A promotion the cart almost meets, and products that complete it.")
class Nudge:
    promotion: str
    text: str
    kind: str
    missing: Money | None
    missing_quantity: int
    threshold: Money | None
    product_ids: list[strawberry.ID]
    products: list[Product]


@strawberry.type(description="The cart priced with every promotion that applies.")
class PricedCart:
    currency: str
    lines: list[PricedCartLine] = strawberry.field(
        description="The priced lines; `index` is the line's index in the request."
    )
    errors: list[CartLineError] = strawberry.field(
        description="The lines that could not be priced (each request line is either in "
        "`lines` or here, by `index`)."
    )
    subtotal: Money
    discount_total: Money
    shipping: Money
    shipping_discount: Money
    total: Money
    applied_promotions: list[AppliedPromotion]
    not_applied: list[NotAppliedPromotion]
    nudges: list[Nudge]

    @classmethod
    def of(
        cls,
        cart: offers_contract.PricedCart,
        products: Mapping[str, ProductModel] | None = None,
        errors: Sequence[cart_lines.CartLineError] = (),
    ) -> PricedCart:
        products = products or {}
        cur = cart.currency

        def money(amount: int) -> Money:
            return Money(amount=Long(amount), currency=cur)

        def product(pid: str) -> Product | None:
            p = products.get(pid)
            return Product.of(p) if p is not None else None

        return cls(
            currency=cart.currency,
            lines=[
                PricedCartLine(
                    index=line.index,
                    product_id=strawberry.ID(line.product_id),
                    product=product(line.product_id),
                    quantity=line.quantity,
                    unit_price=Money.of(line.unit_price),
                    subtotal=Money.of(line.subtotal),
                    discount=Money.of(line.discount),
                    total=Money.of(line.total),
                )
                for line in cart.lines
            ],
            errors=[CartLineError.of(e) for e in errors],
            subtotal=Money.of(cart.subtotal),
            discount_total=Money.of(cart.discount_total),
            shipping=Money.of(cart.shipping),
            shipping_discount=Money.of(cart.shipping_discount),
            total=Money.of(cart.total),
            applied_promotions=[
                AppliedPromotion(
                    name=a.name,
                    title=a.title,
                    amount=Money.of(a.amount),
                    source=a.source,
                    lines=[
                        LineDiscount(index=i, amount=money(v)) for i, v in a.line_amounts.items()
                    ],
                    shipping_amount=money(a.shipping_amount),
                )
                for a in cart.applied
            ],
            not_applied=[
                NotAppliedPromotion(
                    name=n.name,
                    reason=n.reason,
                    code=n.code,
                    missing=Money.of(n.missing) if n.missing else None,
                    conflicts_with=list(n.conflicts),
                )
                for n in cart.not_applied
            ],
            nudges=[
                Nudge(
                    promotion=n.promotion,
                    text=n.text,
                    kind=n.kind,
                    missing=Money.of(n.missing) if n.missing is not None else None,
                    missing_quantity=n.missing_quantity,
                    threshold=Money.of(n.threshold) if n.threshold else None,
                    product_ids=[strawberry.ID(p) for p in n.product_ids],
                    products=[
                        Product.of(products[p])
                        for p in n.product_ids
                        if p in products and products[p].active
                    ],
                )
                for n in cart.nudges
            ],
        )


@strawberry.type(description="A strategy left out of this answer, and why.")
class Degraded:
    strategy: str
    reason: str

    @classmethod
    def of(cls, d: Degradation) -> Degraded:
        return cls(strategy=d.strategy, reason=d.reason)


@strawberry.type(description="An experiment this answer was served in, and the variant.")
class ServedExperiment:
    experiment: str
    variant: str


@strawberry.type(description="Everything the storefront shows this shopper on this page.")
class Storefront:
    request_id: str
    slots: list[RecommendationSlot]
    coupons: list[CouponOffer]
    degraded: list[Degraded] = strawberry.field(
        description="Strategies left out of this answer (failed, late, missing or switched off)."
    )
    experiments: list[ServedExperiment] = strawberry.field(
        description="The experiments and variants that served this answer (empty when none)."
    )
    priced_cart: strawberry.Private[PricedCart | None]
    cart_error: strawberry.Private[str | None]

    cart: PricedCart | None = strawberry.field(
        resolver=lambda root: root.resolve_cart(),
        description="The priced cart; a line that cannot be priced is reported in "
        "`cart.errors` and the rest is priced. Null with an error only when no line can be "
        "priced at all (the database is down); the rest of the answer still arrives.",
    )

    def resolve_cart(self) -> PricedCart | None:
        if self.cart_error is not None:
            raise user_error(self.cart_error)
        return self.priced_cart

    @classmethod
    def of(cls, result: storefront_answer.StorefrontResult) -> Storefront:
        return cls(
            request_id=result.request_id,
            slots=[RecommendationSlot.of(s) for s in result.slots],
            coupons=[CouponOffer.of(o) for o in result.coupons],
            degraded=[Degraded.of(d) for d in result.degraded],
            experiments=[ServedExperiment(experiment=e, variant=v) for e, v in result.experiments],
            priced_cart=(
                PricedCart.of(result.cart, result.products, result.cart_line_errors)
                if result.cart is not None
                else None
            ),
            cart_error=result.cart_error,
        )
