"""Shopper profiles: the merchant's `profile` query and the storefront's `setPreferences`."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any

import strawberry
from shopfront.offers import promotions
from shopfront.platform.money import Money as MoneyModel
from shopfront.schema.context import Context
from shopfront.schema.errors import user_error
from shopfront.schema.permissions import merchant_field, storefront_mutation
from shopfront.schema.types import Money, MoneyInput
from shopfront.shoppers import events, privacy, profiles
from shopfront.shoppers.profile_view import Profile as ProfileModel
from shopfront.shoppers.profile_view import StatedPreferences as StatedPreferencesModel
from strawberry.types import Info


@strawberry.type(
    description="A ranked affinity: higher scores first; only order and ratios mean "
    "anything (scores decay with time)."
)
class Affinity:
    key: str = strawberry.field(description='The brand, tag, or category path ("Shoes > Running").')
    score: float


@strawberry.type
class PurchasedProduct:
    product_id: strawberry.ID
    count: int
    last_purchased_at: datetime


@strawberry.type
class ProfileCartLine:
    product_id: strawberry.ID
    quantity: int


@strawberry.type
class ProductRating:
    product_id: strawberry.ID
    rating: int


@strawberry.type
class Answer:
    key: str
    value: str


@strawberry.input
class AnswerInput:
    key: str
    value: str


@strawberry.type(description="What the shopper told us, as opposed to what they did.")
class StatedPreferences:
    categories: list[str] = strawberry.field(description='Category paths, e.g. "Shoes > Running".')
    brands: list[str]
    sizes: list[str]
    price_min: Money | None
    price_max: Money | None
    answers: list[Answer] = strawberry.field(description="Survey answers, by question key.")

    @classmethod
    def of(cls, p: StatedPreferencesModel) -> StatedPreferences:
        return cls(
            categories=list(p.categories),
            brands=list(p.brands),
            sizes=list(p.sizes),
            price_min=Money.of(p.price_min) if p.price_min else None,
            price_max=Money.of(p.price_max) if p.price_max else None,
            answers=[Answer(key=k, value=v) for k, v in sorted(p.answers.items())],
        )


@strawberry.input(description="Stated preferences; they replace what was stated before.")
class PreferencesInput:
    categories: list[str] = strawberry.field(
        default_factory=list, description='Category paths, e.g. "Shoes > Running".'
    )
    brands: list[str] = strawberry.field(default_factory=list)
    sizes: list[str] = strawberry.field(default_factory=list)
    price_min: MoneyInput | None = None
    price_max: MoneyInput | None = None
    answers: list[AnswerInput] = strawberry.field(
        default_factory=list, description="Survey answers as key/value strings."
    )

    def to_raw(self) -> dict[str, Any]:
        answers: dict[str, str] = {}
        for a in self.answers:
            if a.key in answers:
                raise user_error(f"answers: the key {a.key!r} is given twice")
            answers[a.key] = a.value
        return {
            "categories": list(self.categories),
            "brands": list(self.brands),
            "sizes": list(self.sizes),
            "price_min": _money(self.price_min),
            "price_max": _money(self.price_max),
            "answers": answers,
        }


def _money(m: MoneyInput | None) -> dict[str, Any] | None:
    return {"amount": m.amount, "currency": m.currency} if m else None


@strawberry.type(description="What Shopfront knows about one shopper, evaluated now.")
class ShopperProfile:
    user_id: strawberry.ID
    as_of: datetime
    consent_personalization: bool
    category_affinities: list[Affinity]
    brand_affinities: list[Affinity]
    tag_affinities: list[Affinity]
    recently_viewed: list[strawberry.ID] = strawberry.field(description="Newest first.")
    purchases: list[PurchasedProduct]
    not_interested: list[strawberry.ID]
    cart: list[ProfileCartLine] = strawberry.field(description="As last seen from cart events.")
    cart_updated_at: datetime | None
    ratings: list[ProductRating]
    typical_price: Money | None = strawberry.field(description="Typical unit price paid.")
    first_seen: datetime | None
    last_seen: datetime | None
    sessions: int
    orders: int
    total_spent: Money | None
    last_purchase_at: datetime | None
    preferences: StatedPreferences

    @classmethod
    def of(cls, p: ProfileModel) -> ShopperProfile:
        return cls(
            user_id=strawberry.ID(p.user_id),
            as_of=p.as_of,
            consent_personalization=p.consent_personalization,
            category_affinities=[Affinity(key=k, score=s) for k, s in p.category_affinities],
            brand_affinities=[Affinity(key=k, score=s) for k, s in p.brand_affinities],
            tag_affinities=[Affinity(key=k, score=s) for k, s in p.tag_affinities],
            recently_viewed=[strawberry.ID(pid) for pid in p.recently_viewed],
            purchases=[
                PurchasedProduct(
                    product_id=strawberry.ID(pid), count=v.count, last_purchased_at=v.last_at
                )
                for pid, v in sorted(
                    p.purchases.items(), key=lambda kv: kv[1].last_at, reverse=True
                )
            ],
            not_interested=[strawberry.ID(pid) for pid in sorted(p.not_interested)],
            cart=[ProfileCartLine(product_id=strawberry.ID(pid), quantity=q) for pid, q in p.cart],
            cart_updated_at=p.cart_updated_at,
            ratings=[
                ProductRating(product_id=strawberry.ID(pid), rating=r)
                for pid, r in sorted(p.ratings.items())
            ],
            typical_price=Money.of(p.typical_price) if p.typical_price else None,
            first_seen=p.first_seen,
            last_seen=p.last_seen,
            sessions=p.sessions,
            orders=p.orders,
            total_spent=Money.of(p.total_spent) if p.total_spent else None,
            last_purchase_at=p.last_purchase_at,
            preferences=StatedPreferences.of(p.preferences),
        )


def checked_user_id(user_id: strawberry.ID) -> str:
    try:
        return privacy.check_user_id(str(user_id))
    except privacy.PrivacyError as exc:
        raise user_error(str(exc)) from None


MAX_RECENT_EVENTS = 100


@strawberry.type(description="One stored behaviour event of a shopper.")
class ShopperEvent:
    event_id: strawberry.ID
    type: str = strawberry.field(description='Lower case, e.g. "add_to_cart".')
    timestamp: datetime
    session_id: strawberry.ID | None
    product_id: strawberry.ID | None
    quantity: int | None
    price: Money | None
    order_id: strawberry.ID | None
    query: str | None
    rating: int | None
    recommendation_id: strawberry.ID | None
    page_type: str | None

    @classmethod
    def of(cls, doc: dict[str, Any]) -> ShopperEvent:
        price = doc.get("price")

        def ident(name: str) -> strawberry.ID | None:
            value = doc.get(name)
            return strawberry.ID(str(value)) if value is not None else None

        return cls(
            event_id=strawberry.ID(str(doc["event_id"])),
            type=str(doc["type"]),
            timestamp=doc["timestamp"].replace(tzinfo=doc["timestamp"].tzinfo or UTC),
            session_id=ident("session_id"),
            product_id=ident("product_id"),
            quantity=doc.get("quantity"),
            price=Money.of(MoneyModel.from_doc(price)) if isinstance(price, dict) else None,
            order_id=ident("order_id"),
            query=doc.get("query"),
            rating=doc.get("rating"),
            recommendation_id=ident("recommendation_id"),
            page_type=doc.get("page_type"),
        )


@strawberry.enum
class SegmentOwner(Enum):
    PROMOTION = "promotion"
    COUPON_CAMPAIGN = "coupon_campaign"


@strawberry.type(description="An active promotion or coupon campaign that targets a segment.")
class ShopperSegment:
    kind: SegmentOwner
    id: strawberry.ID
    title: str
    member: bool = strawberry.field(description="The shopper is in the segment now.")
    reason: str | None = strawberry.field(description="Why not, when not a member.")


@strawberry.type
class ProfilesQuery:
    @merchant_field(description="A shopper's profile with its affinities ranked, or null.")
    async def profile(
        self, info: Info[Context, Any], user_id: strawberry.ID
    ) -> ShopperProfile | None:
        found = await profiles.load_profile(info.context.runtime.store, checked_user_id(user_id))
        return ShopperProfile.of(found) if found else None

    @merchant_field(description="The shopper's stored events, newest first.")
    async def recent_events(
        self, info: Info[Context, Any], user_id: strawberry.ID, first: int = 20
    ) -> list[ShopperEvent]:
        if not 1 <= first <= MAX_RECENT_EVENTS:
            raise user_error(f"first must be between 1 and {MAX_RECENT_EVENTS}, got {first}")
        docs = await events.recent_events(
            info.context.runtime.store, checked_user_id(user_id), first
        )
        return [ShopperEvent.of(d) for d in docs]

    @merchant_field(
        description="The active promotions and coupon campaigns that target a segment, and "
        "whether this shopper is in each, as pricing would decide now."
    )
    async def shopper_segments(
        self, info: Info[Context, Any], user_id: strawberry.ID
    ) -> list[ShopperSegment]:
        runtime = info.context.runtime
        now = datetime.now(UTC)
        profile = await profiles.load_profile(runtime.store, checked_user_id(user_id), now)
        found = await promotions.segment_memberships(runtime.store, runtime.settings, profile, now)
        return [
            ShopperSegment(
                kind=SegmentOwner(m.kind),
                id=strawberry.ID(m.id),
                title=m.title,
                member=m.member,
                reason=m.reason,
            )
            for m in found
        ]


@strawberry.type
class ProfilesMutation:
    @storefront_mutation(
        description="Store what the shopper stated (favourite categories and brands, sizes, "
        "price range, survey answers); stated favourites add to the shopper's affinities."
    )
    async def set_preferences(
        self, info: Info[Context, Any], user_id: strawberry.ID, preferences: PreferencesInput
    ) -> StatedPreferences:
        store = info.context.runtime.store
        uid = checked_user_id(user_id)
        if await privacy.is_erased(store, uid):
            raise user_error(
                "userId: this shopper was erased; nothing is stored about them", code="USER_ERASED"
            )
        try:
            stated = await profiles.set_preferences(store, uid, preferences.to_raw())
        except profiles.ProfileError as exc:
            raise user_error(str(exc)) from None
        except profiles.ConsentWithheld as exc:
            raise user_error(str(exc), code="CONSENT_WITHHELD") from None
        return StatedPreferences.of(stated)
