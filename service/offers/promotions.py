"""Merchant-managed promotions: stored in MongoDB, validated by their type, cached per instance.

Why stored, not configured
--------------------------
A shop runs many promotions of each type and changes them daily (a weekend sale, a new
bundle), so promotions are data, managed through the API (``upsertPromotion``,
``deletePromotion``, ``promotions``), not deployment configuration. A promotion *type* is
code: a `PromotionSpec` with ``managed=True`` (the built-in ones in `plugins.promotions`, or
a merchant plugin's). Each stored promotion names its type; its document is the type's
config, validated by the type's factory on every write, so a bad promotion is refused with
the field named and never reaches a cart.

Documents in ``promotions``::

    {id, type, active, created_at, updated_at,
     definition: {title, description, priority, stacking, combines_with, conditions, params}}

Every write bumps a revision counter (``revisions``, ``_id: "promotions"``). Each instance's
`PromotionBook` checks the counter at most every ``promotions_refresh_ms`` and rebuilds its
promotions when it moved, so a change applies on every instance within that interval without
a restart, and at once on the instance that made it. A stored promotion whose type is gone or
that no longer validates is skipped with a warning (money paths fail closed).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import inspect
import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from shopfront.catalog.products import Product
from shopfront.catalog.snapshot import CatalogSnapshot
from shopfront.offers.contract import ProductScope, Promotion, PromotionSpec
from shopfront.offers.coupon_service import CouponService
from shopfront.offers.pricing import CartPricer, NudgePolicy, shipping_fees
from shopfront.offers.rules import RuleError, Segment, optional_datetime, text_value
from shopfront.platform.config import Settings
from shopfront.platform.money import Money
from shopfront.platform.store import ReturnDocument, Store
from shopfront.platform.strategy_setup import StrategySetup
from shopfront.shoppers.context import RequestContext
from shopfront.shoppers.profile_view import Profile

log = logging.getLogger(__name__)

MAX_SCAN = 20_000  # products an in-memory nudge search looks at per direction

COLLECTION = "promotions"
REVISIONS = "revisions"
MAX_PROMOTIONS = 1000  # active promotions per shop: each cart is tried against every one
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")


class PromotionError(ValueError):
    """A promotion was refused; the message names the field."""


@dataclass(frozen=True)
class StoredPromotion:
    """A promotion as stored: its id, type, whether it is active, and its definition."""

    id: str
    type: str
    active: bool
    config: Mapping[str, Any]
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> StoredPromotion:
        return cls(
            id=doc["id"],
            type=doc["type"],
            active=bool(doc.get("active", True)),
            config=doc.get("definition") or {},
            created_at=doc.get("created_at"),
            updated_at=doc.get("updated_at"),
        )


_BOOKKEEPING = {"_id", "id", "type", "active", "created_at", "updated_at", "definition"}


class PromotionTypes:
    """The promotion types this service knows: managed specs by name."""

    def __init__(self, specs: Iterable[PromotionSpec]) -> None:
        self._specs: dict[str, PromotionSpec] = {}
        for spec in specs:
            if not spec.managed:
                continue
            if spec.name in self._specs:
                raise ValueError(f"two promotion types are named {spec.name!r}")
            self._specs[spec.name] = spec

    @classmethod
    def builtin(cls) -> PromotionTypes:
        from shopfront.plugins.promotions import PROMOTION_TYPES

        return cls(PROMOTION_TYPES)

    @property
    def names(self) -> list[str]:
        return sorted(self._specs)

    def get(self, name: str) -> PromotionSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise PromotionError(
                f"type: unknown promotion type {name!r}; known: {', '.join(self.names)}"
            ) from None


async def build_promotion(
    spec: PromotionSpec,
    promotion_id: str,
    config: Mapping[str, Any],
    settings: Settings,
    store: Store,
) -> Promotion:
    """Build one promotion from its definition; `PromotionError` names what is wrong."""
    setup = StrategySetup(
        name=promotion_id,
        config=config,
        settings=settings,
        store=store,
        log=logging.getLogger(f"shopfront.promotion.{spec.name}"),
    )
    try:
        built = spec.factory(setup)
        promotion = await built if inspect.isawaitable(built) else built
    except (RuleError, ValueError, TypeError) as exc:
        raise PromotionError(str(exc)) from None
    if not isinstance(promotion, Promotion):
        raise PromotionError(f"type {spec.name!r} did not build a promotion")
    return promotion


# -- storage -------------------------------------------------------------------------------


def _check_id(raw: Any) -> str:
    pid = text_value(raw, "id", max_len=100) if raw is not None else ""
    if not _ID.match(pid):
        raise PromotionError(
            "id: must be 1-100 letters, digits or . _ : - and start with a letter or digit"
        )
    return pid


async def upsert_promotion(
    store: Store, types: PromotionTypes, settings: Settings, raw: Mapping[str, Any]
) -> StoredPromotion:
    """Validate and store a promotion (create or replace by id); bump the revision.

    ``raw`` has ``id``, ``type``, ``active`` and the type's definition (title, priority,
    stacking, combines_with, conditions, params).
    """
    try:
        pid = _check_id(raw.get("id"))
    except RuleError as exc:
        raise PromotionError(str(exc)) from None
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise PromotionError("type: is required")
    spec = types.get(kind)
    active = raw.get("active", True)
    if not isinstance(active, bool):
        raise PromotionError("active: must be true or false")
    config = {k: v for k, v in raw.items() if k not in _BOOKKEEPING and v is not None}
    await build_promotion(spec, pid, config, settings, store)  # validates; raises with the field
    if (
        active
        and await store.collection(COLLECTION).count_documents({"active": True, "id": {"$ne": pid}})
        >= MAX_PROMOTIONS
    ):
        raise PromotionError(f"active: at most {MAX_PROMOTIONS} promotions can be active")
    now = datetime.now(UTC)
    doc = await store.collection(COLLECTION).find_one_and_update(
        {"id": pid},
        {
            "$set": {"type": kind, "active": active, "definition": config, "updated_at": now},
            "$setOnInsert": {"created_at": now},
        },
        upsert=True,
        return_document=ReturnDocument.AFTER,
        projection={"_id": 0},
    )
    await bump_revision(store)
    return StoredPromotion.from_doc(doc)


async def delete_promotion(store: Store, promotion_id: str) -> bool:
    result = await store.collection(COLLECTION).delete_one({"id": str(promotion_id)})
    if result.deleted_count:
        await bump_revision(store)
    return bool(result.deleted_count)


async def get_promotion(store: Store, promotion_id: str) -> StoredPromotion | None:
    doc = await store.collection(COLLECTION).find_one({"id": str(promotion_id)}, {"_id": 0})
    return StoredPromotion.from_doc(doc) if doc else None


async def list_promotions(
    store: Store, *, active: bool | None = None, first: int = 100, after: str | None = None
) -> list[StoredPromotion]:
    """Promotions in id order, ``first`` of them after the id ``after``."""
    query: dict[str, Any] = {}
    if active is not None:
        query["active"] = active
    if after is not None:
        query["id"] = {"$gt": str(after)}
    cursor = store.collection(COLLECTION).find(query, {"_id": 0}).sort("id", 1).limit(first)
    return [StoredPromotion.from_doc(d) for d in await cursor.to_list(None)]


async def bump_revision(store: Store, name: str = COLLECTION) -> None:
    await store.collection(REVISIONS).update_one({"_id": name}, {"$inc": {"n": 1}}, upsert=True)


async def read_revision(store: Store, name: str = COLLECTION) -> int:
    doc = await store.collection(REVISIONS).find_one({"_id": name})
    return int(doc["n"]) if doc else 0


# -- the per-instance cache ----------------------------------------------------------------


@dataclass(frozen=True)
class _Loaded:
    promotion: Promotion
    starts_at: datetime | None
    ends_at: datetime | None


class PromotionBook:
    """This instance's active stored promotions, built and cached (a `PromotionSource`)."""

    def __init__(self, store: Store, settings: Settings, types: PromotionTypes) -> None:
        self.store = store
        self.settings = settings
        self.types = types
        self._loaded: list[_Loaded] = []
        self._revision: int | None = None
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Re-check the revision on the next request (after a change through this instance)."""
        self._checked_at = float("-inf")

    async def __call__(self, ctx: RequestContext) -> list[Promotion]:
        """The stored promotions active at ``ctx.now``, in id order."""
        await self._refresh_if_due()
        return [
            entry.promotion
            for entry in self._loaded
            if (entry.starts_at is None or entry.starts_at <= ctx.now)
            and (entry.ends_at is None or ctx.now < entry.ends_at)
        ]

    async def _refresh_if_due(self) -> None:
        interval = self.settings.promotions_refresh_ms / 1000
        if time.monotonic() - self._checked_at < interval:
            return
        async with self._lock:
            if time.monotonic() - self._checked_at < interval:
                return  # another request refreshed while this one waited
            revision = await read_revision(self.store)
            if revision != self._revision:
                self._loaded = await self._load()
                self._revision = revision
            self._checked_at = time.monotonic()

    async def _load(self) -> list[_Loaded]:
        docs = (
            await self.store.collection(COLLECTION)
            .find({"active": True}, {"_id": 0})
            .sort("id", 1)
            .limit(MAX_PROMOTIONS)
            .to_list(None)
        )
        loaded: list[_Loaded] = []
        for doc in docs:
            stored = StoredPromotion.from_doc(doc)
            try:
                spec = self.types.get(stored.type)
                promotion = await build_promotion(
                    spec, stored.id, stored.config, self.settings, self.store
                )
                conditions = stored.config.get("conditions") or {}
                window = (
                    optional_datetime(conditions.get("starts_at"), "conditions.starts_at"),
                    optional_datetime(conditions.get("ends_at"), "conditions.ends_at"),
                )
            except (PromotionError, RuleError) as exc:
                log.warning("stored promotion %r skipped: %s", stored.id, exc)
                continue
            loaded.append(_Loaded(promotion, *window))
        return loaded


# -- nudge suggestions ---------------------------------------------------------------------


class CatalogSuggester:
    """Default nudge suggestions: in-stock products that count towards the nudge, priced at
    (or just above) the missing amount, favourite categories first.

    One bounded query on the price index - the ``pool`` cheapest products at or above the
    missing amount (or the ``pool`` dearest below it when none reach it) - never a pass over
    the catalog. Ranking: the shopper's affinity for the product's category (with consent),
    then how close the price is to the missing amount, then id.
    """

    def __init__(
        self, store: Store, pool: int = 40, snapshot: CatalogSnapshot | None = None
    ) -> None:
        self.store = store
        self.pool = pool
        # The in-memory catalog: the same pool from its price order, no query.
        self.snapshot = snapshot

    async def __call__(
        self,
        ctx: RequestContext,
        kind: str,
        missing: Money | None,
        eligible: ProductScope,
        limit: int,
    ) -> list[str]:
        target = missing.amount if missing is not None else 0
        if self.snapshot is not None:
            return self._from_memory(self.snapshot, ctx, target, eligible, limit)
        query = self._query(ctx, eligible)
        projection = {"_id": 0, "id": 1, "price": 1, "category_path": 1}
        coll = self.store.products
        docs = (
            await coll.find({**query, "price.amount": {"$gte": target}}, projection)
            .sort("price.amount", 1)
            .limit(self.pool)
            .to_list(None)
        )
        if len(docs) < limit and target > 0:
            below = (
                await coll.find({**query, "price.amount": {"$lt": target}}, projection)
                .sort("price.amount", -1)
                .limit(self.pool)
                .to_list(None)
            )
            docs += below
        affinity = _affinities(ctx)

        def rank(doc: Mapping[str, Any]) -> tuple[float, int, str]:
            path = tuple(doc.get("category_path") or ())
            score = max(
                (affinity.get(" > ".join(path[:n]), 0.0) for n in range(1, len(path) + 1)),
                default=0.0,
            )
            return (-score, abs(int(doc["price"]["amount"]) - target), str(doc["id"]))

        return [str(d["id"]) for d in sorted(docs, key=rank)[:limit]]

    def _from_memory(
        self,
        snapshot: CatalogSnapshot,
        ctx: RequestContext,
        target: int,
        eligible: ProductScope,
        limit: int,
    ) -> list[str]:
        """`__call__` over the snapshot's price order: the ``pool`` cheapest eligible products
        at or above ``target`` (and the dearest below it when too few), ranked the same way.
        At most `MAX_SCAN` products are looked at per direction (a scope that matches almost
        nothing must not cost a pass over a large catalog)."""
        prices, products = snapshot.in_price_order(ctx.currency)
        in_cart = {line.product_id for line in ctx.cart_lines}

        def fits(p: Product) -> bool:
            return p.id not in in_cart and (eligible.everything or eligible.matches(p))

        start = bisect.bisect_left(prices, target)
        pool = [p for p in islice(products, start, start + MAX_SCAN) if fits(p)][: self.pool]
        if len(pool) < limit and target > 0:
            below = (products[i] for i in range(start - 1, max(-1, start - 1 - MAX_SCAN), -1))
            pool += [p for p in below if fits(p)][: self.pool]
        affinity = _affinities(ctx)

        def rank(p: Product) -> tuple[float, int, str]:
            path = p.category_path
            score = max(
                (affinity.get(" > ".join(path[:n]), 0.0) for n in range(1, len(path) + 1)),
                default=0.0,
            )
            return (-score, abs(p.price.amount - target), p.id)

        return [p.id for p in sorted(pool, key=rank)[:limit]]

    @staticmethod
    def _query(ctx: RequestContext, eligible: ProductScope) -> dict[str, Any]:
        query: dict[str, Any] = {
            "active": True,
            "stock": {"$gt": 0},
            "price.currency": ctx.currency,
        }
        in_cart = sorted({line.product_id for line in ctx.cart_lines})
        if in_cart:
            query["id"] = {"$nin": in_cart}
        if not eligible.everything:
            either: list[dict[str, Any]] = []
            if eligible.product_ids:
                either.append({"id": {"$in": sorted(eligible.product_ids)}})
            if eligible.brands:
                either.append({"brand": {"$in": sorted(eligible.brands)}})
            for path in sorted(eligible.categories):
                either.append({f"category_path.{i}": part for i, part in enumerate(path)})
            query["$or"] = either
        return query


def _affinities(ctx: RequestContext) -> dict[str, float]:
    if ctx.profile is None or not ctx.personalized:
        return {}
    return dict(ctx.profile.category_affinities)


# -- wiring --------------------------------------------------------------------------------


def build_cart_pricer(
    store: Store,
    settings: Settings,
    book: PromotionBook,
    coupons: CouponService,
    catalog: CatalogSnapshot | None = None,
) -> CartPricer:
    """The service's cart pricer: stored promotions (``book``), entered coupons, the built-in
    best-deal stacking, catalog nudge suggestions, and the settings' shipping fees and nudge
    closeness. The storefront composer binds it per request to plugin promotions (each under
    its deadline and breaker) and the ``promotion_stacking`` hook."""
    from shopfront.plugins.promotions import promotion_stacking

    return CartPricer(
        promotions=book,
        stacking=promotion_stacking,
        coupons=coupons.resolve,
        suggest=CatalogSuggester(store, snapshot=catalog),
        nudges=NudgePolicy.from_settings(settings),
        shipping_fees=shipping_fees(settings),
    )


# -- demo ----------------------------------------------------------------------------------

DEMO_PROMOTIONS: tuple[dict[str, Any], ...] = (
    {
        "id": "demo-free-shipping",
        "type": "free_shipping",
        "title": "Free shipping over 50.00 EUR",
        "params": {"threshold": {"amount": 5000, "currency": "EUR"}},
    },
    {
        "id": "demo-spend-more",
        "type": "tiered_spend",
        "title": "Spend 50, save 5 - spend 100, save 15",
        "params": {
            "tiers": [
                {
                    "threshold": {"amount": 5000, "currency": "EUR"},
                    "discount": {"amount": {"amount": 500, "currency": "EUR"}},
                },
                {
                    "threshold": {"amount": 10000, "currency": "EUR"},
                    "discount": {"amount": {"amount": 1500, "currency": "EUR"}},
                },
            ]
        },
    },
)

DEMO_CAMPAIGN: dict[str, Any] = {
    "id": "demo-summer",
    "title": "Summer: 10% off orders over 30.00 EUR",
    "currency": "EUR",
    "discount": {"kind": "percent", "percent": "10"},
    "min_spend": {"amount": 3000, "currency": "EUR"},
    "per_shopper_limit": 1,
    "usage_limit": 1000,
    "budget": {"amount": 50000, "currency": "EUR"},
}
DEMO_CODE = "SUMMER10"


async def seed_demo_promotions(store: Store, settings: Settings) -> None:
    """The demo's promotions and a shared coupon code (``SUMMER10``); idempotent."""
    from shopfront.offers.campaigns import CouponError
    from shopfront.offers.coupon_service import CouponService

    types = PromotionTypes.builtin()
    for promotion in DEMO_PROMOTIONS:
        await upsert_promotion(store, types, settings, promotion)
    coupons = CouponService(store, settings)
    if await coupons.get_campaign(DEMO_CAMPAIGN["id"]) is None:
        await coupons.create_campaign(DEMO_CAMPAIGN)
    with contextlib.suppress(CouponError):  # the code is already there
        await coupons.add_shared_code(DEMO_CAMPAIGN["id"], DEMO_CODE)


async def set_promotion_active(
    store: Store, promotion_id: str, active: bool
) -> StoredPromotion | None:
    """Switch a stored promotion on or off, its definition unchanged; None when there is no
    such promotion. Bumps the revision so every instance picks the change up."""
    if active:
        others = await store.collection(COLLECTION).count_documents(
            {"active": True, "id": {"$ne": str(promotion_id)}}
        )
        if others >= MAX_PROMOTIONS:
            raise PromotionError(f"active: at most {MAX_PROMOTIONS} promotions can be active")
    doc = await store.collection(COLLECTION).find_one_and_update(
        {"id": str(promotion_id)},
        {"$set": {"active": active, "updated_at": datetime.now(UTC)}},
        return_document=ReturnDocument.AFTER,
        projection={"_id": 0},
    )
    if doc is None:
        return None
    await bump_revision(store)
    return StoredPromotion.from_doc(doc)


@dataclass(frozen=True)
class SegmentMembership:
    """Whether a shopper is in the segment of one promotion or coupon campaign."""

    kind: str  # "promotion" or "coupon_campaign"
    id: str
    title: str
    member: bool
    reason: str | None  # why not, shopper-readable (None for members)


async def segment_memberships(
    store: Store, settings: Settings, profile: Profile | None, now: datetime
) -> list[SegmentMembership]:
    """The active promotions and coupon campaigns that target a segment, each with whether
    this shopper is in it, decided by the same `Segment.unmet` the pricing engine uses."""
    personalized = profile.personalized if profile is not None else False
    found: list[SegmentMembership] = []
    for promotion in await list_promotions(store, active=True, first=MAX_PROMOTIONS):
        conditions = promotion.config.get("conditions") or {}
        raw = conditions.get("segment") if isinstance(conditions, Mapping) else None
        if not raw:
            continue
        segment = Segment.from_doc(raw)
        if segment.everyone:
            continue
        why = segment.unmet(profile, now, personalized)
        title = str(promotion.config.get("title") or promotion.id)
        found.append(SegmentMembership("promotion", promotion.id, title, why is None, why))
    campaigns = await CouponService(store, settings).list_campaigns(active=True, first=1000)
    for campaign in campaigns:
        if campaign.segment.everyone:
            continue
        why = campaign.segment.unmet(profile, now, personalized)
        found.append(
            SegmentMembership("coupon_campaign", campaign.id, campaign.title, why is None, why)
        )
    return found
