"""Promotions: the merchant API (typed input per promotion type) and the priced-cart types.

``upsertPromotion`` takes a `PromotionInput` whose ``rule`` names exactly one type with its
typed parameters; the type validates it (the error names the field) and the promotion applies
on every instance within ``SHOPFRONT_PROMOTIONS_REFRESH_MS``. The priced-cart types here
(`PricedCart`, `CartInput`) are shared with the storefront and coupon queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry
from graphql import GraphQLError
from shopfront.catalog import products as catalog
from shopfront.offers import contract as offers_contract
from shopfront.offers import promotions as store_promotions
from shopfront.offers.rules import category_text
from shopfront.platform.money import Money as MoneyModel
from shopfront.runtime import Runtime
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
from shopfront.schema.permissions import merchant_field, merchant_mutation
from shopfront.schema.scalars import JSON
from shopfront.schema.storefront_types import CartLineInput
from shopfront.schema.types import Money, MoneyInput
from shopfront.shoppers.context import CartLine, PageType, RequestContext
from shopfront.shoppers.profile_view import Profile
from strawberry.types import Info

# -- shared value types --------------------------------------------------------------------


def money_doc(value: MoneyInput | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"amount": int(value.amount), "currency": value.currency.strip().upper()}


def money_or_none(doc: Mapping[str, Any] | None) -> Money | None:
    return Money.of(MoneyModel.from_doc(dict(doc))) if doc else None


@strawberry.enum(description="How a promotion combines with others.")
class StackingRule(Enum):
    EXCLUSIVE = "exclusive"
    ALL = "all"
    CLASSES = "classes"


@strawberry.enum(name="PromotionClass", description="What a promotion discounts.")
class PromotionClassEnum(Enum):
    ORDER = "order"
    PRODUCT = "product"
    SHIPPING = "shipping"
    COUPON = "coupon"


@strawberry.input(description="Products by id, category path prefix or brand; empty: all.")
class ProductScopeInput:
    product_ids: list[strawberry.ID] | None = None
    categories: list[str] | None = strawberry.field(
        default=None, description='Category paths, e.g. "Shoes > Running".'
    )
    brands: list[str] | None = None

    def to_doc(self) -> dict[str, list[str]]:
        return {
            "product_ids": [str(p) for p in self.product_ids or ()],
            "categories": list(self.categories or ()),
            "brands": list(self.brands or ()),
        }


def scope_input_doc(value: ProductScopeInput | None) -> dict[str, list[str]] | None:
    return value.to_doc() if value is not None else None


@strawberry.type(description="Products by id, category path prefix or brand; empty: all.")
class ProductScope:
    product_ids: list[strawberry.ID]
    categories: list[str]
    brands: list[str]

    @classmethod
    def of(cls, scope: offers_contract.ProductScope) -> ProductScope:
        return cls(
            product_ids=[strawberry.ID(p) for p in sorted(scope.product_ids)],
            categories=sorted(category_text(c) for c in scope.categories),
            brands=sorted(scope.brands),
        )

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> ProductScope:
        doc = doc or {}
        return cls(
            product_ids=[strawberry.ID(p) for p in doc.get("product_ids", ())],
            categories=list(doc.get("categories", ())),
            brands=list(doc.get("brands", ())),
        )


@strawberry.input(description="The shopper's affinity for a category, relative to their top one.")
class CategoryAffinityInput:
    category: str
    min_ratio: float = 0.5


@strawberry.input(description="Conditions on the shopper's profile; all must hold.")
class SegmentInput:
    first_order: bool | None = None
    min_orders: int | None = None
    min_days_since_last_purchase: int | None = None
    max_days_since_last_purchase: int | None = None
    min_total_spent: MoneyInput | None = None
    max_total_spent: MoneyInput | None = None
    category_affinity: CategoryAffinityInput | None = None

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "first_order": self.first_order,
            "min_orders": self.min_orders,
            "min_days_since_last_purchase": self.min_days_since_last_purchase,
            "max_days_since_last_purchase": self.max_days_since_last_purchase,
            "min_total_spent": money_doc(self.min_total_spent),
            "max_total_spent": money_doc(self.max_total_spent),
        }
        if self.category_affinity is not None:
            doc["category_affinity"] = {
                "category": self.category_affinity.category,
                "min_ratio": self.category_affinity.min_ratio,
            }
        return {k: v for k, v in doc.items() if v is not None}


@strawberry.type(description="Conditions on the shopper's profile; all must hold.")
class Segment:
    first_order: bool | None
    min_orders: int | None
    min_days_since_last_purchase: int | None
    max_days_since_last_purchase: int | None
    min_total_spent: Money | None
    max_total_spent: Money | None
    affinity_category: str | None
    affinity_min_ratio: float | None

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> Segment | None:
        if not doc:
            return None
        affinity = doc.get("category_affinity") or {}
        return cls(
            first_order=doc.get("first_order"),
            min_orders=doc.get("min_orders"),
            min_days_since_last_purchase=doc.get("min_days_since_last_purchase"),
            max_days_since_last_purchase=doc.get("max_days_since_last_purchase"),
            min_total_spent=money_or_none(doc.get("min_total_spent")),
            max_total_spent=money_or_none(doc.get("max_total_spent")),
            affinity_category=affinity.get("category"),
            affinity_min_ratio=affinity.get("min_ratio"),
        )


# -- promotion inputs, one per type --------------------------------------------------------


@strawberry.input(one_of=True, description="A percentage, or a fixed amount.")
class DiscountInput:
    percent: Decimal | None = strawberry.UNSET
    amount: MoneyInput | None = strawberry.UNSET

    def to_doc(self) -> dict[str, Any]:
        if self.percent is not None and self.percent is not strawberry.UNSET:
            return {"percent": str(self.percent)}
        assert isinstance(self.amount, MoneyInput)
        return {"amount": money_doc(self.amount)}


@strawberry.input(description="A percentage or a fixed amount off the whole order.")
class OrderDiscountInput:
    discount: DiscountInput

    def params(self) -> dict[str, Any]:
        return {"discount": self.discount.to_doc()}


@strawberry.input(description="A percentage or a fixed amount per unit off selected products.")
class ItemDiscountInput:
    discount: DiscountInput
    scope: ProductScopeInput

    def params(self) -> dict[str, Any]:
        return {"discount": self.discount.to_doc(), "scope": self.scope.to_doc()}


@strawberry.input(description="Buy X from scope, get Y (cheapest first) free or discounted.")
class BuyXGetYInput:
    buy: int
    get: int
    scope: ProductScopeInput
    get_scope: ProductScopeInput | None = None
    get_percent: Decimal | None = strawberry.field(
        default=None, description="Discount on the Y items; default 100 (free)."
    )
    max_applications: int | None = None

    def params(self) -> dict[str, Any]:
        return {
            "buy": self.buy,
            "get": self.get,
            "scope": self.scope.to_doc(),
            "get_scope": scope_input_doc(self.get_scope),
            "get_percent": str(self.get_percent) if self.get_percent is not None else None,
            "max_applications": self.max_applications,
        }


@strawberry.input
class SpendTierInput:
    threshold: MoneyInput
    discount: DiscountInput


@strawberry.input(description="Spend thresholds with increasing discounts.")
class TieredSpendInput:
    tiers: list[SpendTierInput]
    scope: ProductScopeInput | None = None

    def params(self) -> dict[str, Any]:
        return {
            "tiers": [
                {"threshold": money_doc(t.threshold), "discount": t.discount.to_doc()}
                for t in self.tiers
            ],
            "scope": scope_input_doc(self.scope),
        }


@strawberry.input(description="Free shipping, optionally over a spend threshold.")
class FreeShippingInput:
    threshold: MoneyInput | None = None

    def params(self) -> dict[str, Any]:
        return {"threshold": money_doc(self.threshold)}


@strawberry.input
class BundleItemInput:
    product_id: strawberry.ID
    quantity: int = 1


@strawberry.input(description="These items together for one price, per complete set.")
class BundleInput:
    items: list[BundleItemInput]
    price: MoneyInput
    max_applications: int | None = None

    def params(self) -> dict[str, Any]:
        return {
            "items": [
                {"product_id": str(i.product_id), "quantity": i.quantity} for i in self.items
            ],
            "price": money_doc(self.price),
            "max_applications": self.max_applications,
        }


@strawberry.input(description="N for the price of M: the cheapest N - M of every N are free.")
class NForMInput:
    n: int
    m: int
    scope: ProductScopeInput | None = None
    max_applications: int | None = None

    def params(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "m": self.m,
            "scope": scope_input_doc(self.scope),
            "max_applications": self.max_applications,
        }


@strawberry.input(description="A promotion type from a merchant plugin, with its parameters.")
class CustomPromotionInput:
    type: str
    params: JSON

    def params_doc(self) -> dict[str, Any]:
        if not isinstance(self.params, dict):
            raise user_error("rule.custom.params: must be an object")
        return dict(self.params)


@strawberry.input(one_of=True, description="The promotion's type, with its parameters.")
class PromotionRuleInput:
    order_discount: OrderDiscountInput | None = strawberry.UNSET
    item_discount: ItemDiscountInput | None = strawberry.UNSET
    buy_x_get_y: BuyXGetYInput | None = strawberry.UNSET
    tiered_spend: TieredSpendInput | None = strawberry.UNSET
    free_shipping: FreeShippingInput | None = strawberry.UNSET
    bundle: BundleInput | None = strawberry.UNSET
    n_for_m: NForMInput | None = strawberry.UNSET
    custom: CustomPromotionInput | None = strawberry.UNSET

    def type_and_params(self) -> tuple[str, dict[str, Any]]:
        if isinstance(self.custom, CustomPromotionInput):
            return self.custom.type, self.custom.params_doc()
        typed = {
            "order_discount": self.order_discount,
            "item_discount": self.item_discount,
            "buy_x_get_y": self.buy_x_get_y,
            "tiered_spend": self.tiered_spend,
            "free_shipping": self.free_shipping,
            "bundle": self.bundle,
            "n_for_m": self.n_for_m,
        }
        for name, value in typed.items():
            if value is not None and value is not strawberry.UNSET:
                params = value.params()
                return name, {k: v for k, v in params.items() if v is not None}
        raise user_error("rule: give exactly one promotion type")


@strawberry.input(description="When a promotion may apply; all conditions must hold.")
class PromotionConditionsInput:
    min_subtotal: MoneyInput | None = None
    min_quantity: int | None = None
    segment: SegmentInput | None = None
    channels: list[str] | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    def to_doc(self) -> dict[str, Any]:
        doc = {
            "min_subtotal": money_doc(self.min_subtotal),
            "min_quantity": self.min_quantity,
            "segment": self.segment.to_doc() if self.segment else None,
            "channels": self.channels,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
        }
        return {k: v for k, v in doc.items() if v is not None}


@strawberry.input(description="A promotion to create or replace, keyed by the merchant's id.")
class PromotionInput:
    id: strawberry.ID
    title: str = strawberry.field(description="Shown to shoppers, e.g. '10% off running shoes'.")
    rule: PromotionRuleInput
    description: str | None = None
    active: bool = True
    priority: int | None = strawberry.field(
        default=None,
        description="Lower runs first in the chain (default: product 100, order 200, "
        "shipping 300).",
    )
    stacking: StackingRule = StackingRule.ALL
    combines_with: list[PromotionClassEnum] | None = strawberry.field(
        default=None, description='The classes it combines with, for stacking "CLASSES".'
    )
    conditions: PromotionConditionsInput | None = None

    def to_raw(self) -> dict[str, Any]:
        kind, params = self.rule.type_and_params()
        raw: dict[str, Any] = {
            "id": str(self.id),
            "type": kind,
            "active": self.active,
            "title": self.title,
            "description": self.description,
            "priority": self.priority,
            "stacking": self.stacking.value,
            "combines_with": [c.value for c in self.combines_with] if self.combines_with else None,
            "conditions": self.conditions.to_doc() if self.conditions else None,
            "params": params,
        }
        return {k: v for k, v in raw.items() if v is not None}


# -- promotion outputs ---------------------------------------------------------------------


@strawberry.type
class PromotionConditions:
    min_subtotal: Money | None
    min_quantity: int | None
    segment: Segment | None
    channels: list[str]
    starts_at: datetime | None
    ends_at: datetime | None


@strawberry.type(description="A stored promotion.")
class Promotion:
    id: strawberry.ID
    type: str
    title: str
    description: str
    active: bool
    priority: int | None
    stacking: StackingRule
    combines_with: list[PromotionClassEnum]
    conditions: PromotionConditions
    params: JSON = strawberry.field(description="The type's parameters, as validated.")
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, stored: store_promotions.StoredPromotion) -> Promotion:
        config = stored.config
        cond = config.get("conditions") or {}
        return cls(
            id=strawberry.ID(stored.id),
            type=stored.type,
            title=str(config.get("title", "")),
            description=str(config.get("description", "")),
            active=stored.active,
            priority=config.get("priority"),
            stacking=StackingRule(config.get("stacking", "all")),
            combines_with=[PromotionClassEnum(c) for c in config.get("combines_with", ())],
            conditions=PromotionConditions(
                min_subtotal=money_or_none(cond.get("min_subtotal")),
                min_quantity=cond.get("min_quantity"),
                segment=Segment.from_doc(cond.get("segment")),
                channels=list(cond.get("channels", ())),
                starts_at=_aware(cond.get("starts_at")),
                ends_at=_aware(cond.get("ends_at")),
            ),
            params=JSON(_jsonable(config.get("params", {}))),
            created_at=stored.created_at,
            updated_at=stored.updated_at,
        )


@strawberry.type
class PromotionType:
    name: str
    description: str


def _aware(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


# -- carts ---------------------------------------------------------------------------------


@strawberry.input(
    name="OrderCartInput",
    description="A cart to price or redeem against: its currency, lines and sales channel.",
)
class CartInput:
    currency: str
    lines: list[CartLineInput]
    channel: str | None = strawberry.field(
        default=None, description='Where the shopper is: "web", "app", "pos", ...'
    )

    def cart_lines(self) -> tuple[CartLine, ...]:
        return tuple(CartLine(str(line.product_id), line.quantity) for line in self.lines)

    def canonical(self) -> list[Any]:
        """The cart as plain data, for idempotency fingerprints."""
        lines = [[str(line.product_id), line.quantity] for line in self.lines]
        return [self.currency.strip().upper(), lines, self.channel or ""]


class _StoreCatalog:
    """Per-request product lookups for the request context."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def get_many(self, ids: Sequence[str]) -> Mapping[str, catalog.Product]:
        if self.runtime.catalog is not None:  # the in-memory catalog
            return await self.runtime.catalog.lookup(ids)
        return await catalog.get_products(self.runtime.store, ids)


async def load_profile(runtime: Runtime, user_id: str | None, now: datetime) -> Profile | None:
    """The shopper's profile through ``runtime.profile_loader`` (an async
    ``(user_id, now) -> Profile | None``), or None without one."""
    loader = runtime.profile_loader
    if user_id is None or loader is None:
        return None
    profile: Profile | None = await loader(user_id, now)
    return profile


async def cart_context(
    info: Info[Context, Any], cart: CartInput, user_id: str | None, codes: Sequence[str]
) -> tuple[RequestContext, dict[str, catalog.Product]]:
    """The request context for pricing ``cart``, and the cart's products; a bad cart is a
    BAD_USER_INPUT error naming the line."""
    runtime = info.context.runtime
    currency = cart.currency.strip().upper()
    lines = cart.cart_lines()
    if len(lines) > 200:
        raise user_error("cart.lines: at most 200 lines")
    products = dict(await _StoreCatalog(runtime).get_many([line.product_id for line in lines]))
    now = datetime.now(UTC)
    profile = await load_profile(runtime, user_id, now)
    ctx = RequestContext(
        request_id=info.context.request_id,
        now=now,
        page=PageType.CART,
        currency=currency,
        catalog=_StoreCatalog(runtime),
        user_id=user_id,
        cart_lines=lines,
        coupon_codes=tuple(codes),
        profile=profile,
        personalized=profile.personalized if profile is not None else True,
        products=products,
        channel=(cart.channel or "").strip(),
    )
    return ctx, products


# -- operations ----------------------------------------------------------------------------


def _bad(exc: Exception) -> GraphQLError:
    return user_error(str(exc))


@strawberry.input(description="The promotion to switch on or off.")
class SetPromotionActiveInput:
    promotion_id: strawberry.ID
    active: bool


@strawberry.input(description="The promotion to delete.")
class DeletePromotionInput:
    promotion_id: strawberry.ID


@strawberry.type
class PromotionsQuery:
    @merchant_field(description="Stored promotions in id order.")
    async def promotions(
        self,
        info: Info[Context, Any],
        active: bool | None = None,
        first: int = DEFAULT_FIRST,
        after: str | None = None,
    ) -> Connection[Promotion]:
        check_first(first, info.context.runtime.settings.max_page_size)
        last = decode_cursor("promotions", after, 1)[0] if after is not None else None
        found = await store_promotions.list_promotions(
            info.context.runtime.store, active=active, first=first + 1, after=last
        )
        return connection(
            found, first, lambda p: encode_cursor("promotions", (p.id,)), Promotion.of
        )

    @merchant_field(description="One stored promotion.")
    async def promotion(self, info: Info[Context, Any], id: strawberry.ID) -> Promotion | None:
        found = await store_promotions.get_promotion(info.context.runtime.store, str(id))
        return Promotion.of(found) if found else None

    @merchant_field(description="The promotion types promotions can be created from.")
    async def promotion_types(self, info: Info[Context, Any]) -> list[PromotionType]:
        types = info.context.runtime.promotion_book.types
        return [
            PromotionType(name=name, description=types.get(name).description)
            for name in types.names
        ]


@strawberry.type
class PromotionsMutation:
    @merchant_mutation(
        description="Create or replace a promotion; it is validated by its type and applies "
        "on every instance within the refresh interval."
    )
    async def upsert_promotion(self, info: Info[Context, Any], input: PromotionInput) -> Promotion:
        runtime = info.context.runtime
        book = runtime.promotion_book
        try:
            stored = await store_promotions.upsert_promotion(
                runtime.store, book.types, runtime.settings, input.to_raw()
            )
        except store_promotions.PromotionError as exc:
            raise _bad(exc) from None
        book.invalidate()
        return Promotion.of(stored)

    @merchant_mutation(
        description="Switch a stored promotion on or off, its terms unchanged (applies on "
        "every instance within the refresh interval)."
    )
    async def set_promotion_active(
        self, info: Info[Context, Any], input: SetPromotionActiveInput
    ) -> Promotion:
        id, active = input.promotion_id, input.active
        runtime = info.context.runtime
        try:
            stored = await store_promotions.set_promotion_active(runtime.store, str(id), active)
        except store_promotions.PromotionError as exc:
            raise _bad(exc) from None
        if stored is None:
            raise user_error(f"promotionId: no promotion {str(id)!r}", code=ErrorCode.NOT_FOUND)
        runtime.promotion_book.invalidate()
        return Promotion.of(stored)

    @merchant_mutation(description="Delete a promotion; returns whether it existed.")
    async def delete_promotion(self, info: Info[Context, Any], input: DeletePromotionInput) -> bool:
        id = input.promotion_id
        runtime = info.context.runtime
        deleted = await store_promotions.delete_promotion(runtime.store, str(id))
        runtime.promotion_book.invalidate()
        return deleted
