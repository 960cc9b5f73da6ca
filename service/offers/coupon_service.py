"""Coupon campaigns, their codes, and redemptions that stay exact under concurrency.

A **campaign** holds the terms: a discount (percent, fixed amount, free shipping or a free
product), a validity window, minimum spend and quantity, eligible products, a shopper segment,
a total usage limit, a per-shopper limit, a money budget, and whether it combines with
promotions. **Codes** point at a campaign: a shared code (``SUMMER10``), unique single-use
codes generated in bulk, or personal codes minted for one shopper by a coupon strategy.

Validation (`CouponService.resolve`) turns entered codes into promotions of class ``coupon``
that the pricing engine stacks after the cart's promotions; a code refused before pricing, or
that does not apply to the cart, gets a reason code (see `REFUSAL_CODES`).

Redemption (`CouponService.redeem`) is atomic in MongoDB. One transaction:

1. conditionally updates the campaign - ``active``, inside its window, ``used < usage_limit``
   and ``discount_given + amount <= budget`` in the filter - incrementing both counters;
2. for a single-use or personal code, conditionally increments its ``used`` (``< max_uses``);
3. increments the per-(campaign, shopper) counter and aborts when it passes the limit;
4. inserts the redemption (a unique index on campaign, shopper and order while redeemed);
5. records the result under the idempotency key (unique ``_id``).

Any failed condition aborts the transaction, so nothing is half-written. A refusal is
recorded under the key too, so the same key always returns its first result; the same key
with different arguments is `IdempotencyKeyReused`. Within one process, redemptions of a
campaign are serialised by a lock: concurrent transactions on one campaign document only
abort each other (WriteConflict) and retry, which wastes more time than waiting. Across
processes, the database's conditions decide and ``with_transaction`` retries conflicts.

`CouponService.release` undoes the redemptions of a cancelled order (counters and budget
decremented, the redemption marked released), idempotently.

Collections: ``coupon_campaigns``, ``coupon_codes``, ``coupon_redemptions``,
``coupon_usage``, ``coupon_idempotency``; indexes in `shopfront.platform.store.INDEXES`.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shopfront.offers.campaigns import (
    _SHARED_CODE,
    ALREADY_REDEEMED,
    BUDGET_EXHAUSTED,
    CAMPAIGNS,
    CODES,
    EXPORT_BATCH,
    IDEMPOTENCY,
    INSERT_BATCH,
    NOT_ELIGIBLE,
    PER_SHOPPER_LIMIT_REACHED,
    REDEMPTIONS,
    TOO_MANY_CODES,
    UNKNOWN_CODE,
    USAGE,
    USAGE_LIMIT_REACHED,
    Campaign,
    CodeRecord,
    CouponError,
    IdempotencyKeyReused,
    new_code,
    normalize_code,
)
from shopfront.offers.contract import (
    NotApplied,
)
from shopfront.offers.coupon_promotion import CouponPromotion, _not_applied
from shopfront.offers.pricing import CouponPricing
from shopfront.offers.redemption import (
    RedeemRequest,
    RedeemResult,
    Redemption,
    Refusal,
    ReleaseResult,
    _KeyTaken,
    _Refused,
)
from shopfront.platform.config import Settings
from shopfront.platform.money import Money
from shopfront.platform.store import BulkWriteError, DuplicateKeyError, ReturnDocument, Store
from shopfront.platform.watched import WatchedCollection
from shopfront.shoppers.context import RequestContext

# -- the service ---------------------------------------------------------------------------


class CouponService:
    """Campaigns, codes, validation and redemption over one store."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        # Campaigns and shared codes held in memory (set by the app's start-up): validating
        # an entered code then costs no round trip. None: read them per request.
        self.known_campaigns: WatchedCollection | None = None
        self.shared_codes: WatchedCollection | None = None
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def campaigns(self) -> Any:
        return self.store.collection(CAMPAIGNS)

    @property
    def codes(self) -> Any:
        return self.store.collection(CODES)

    # campaigns --------------------------------------------------------------------------

    async def create_campaign(self, raw: Mapping[str, Any]) -> Campaign:
        campaign = Campaign.validate(raw)
        now = datetime.now(UTC)
        doc = {
            "_id": campaign.id,
            **campaign.to_doc(),
            "used": 0,
            "discount_given": 0,
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self.campaigns.insert_one(doc)
        except DuplicateKeyError:
            raise CouponError(f"id: a campaign {campaign.id!r} already exists") from None
        return Campaign.from_doc(doc)

    async def update_campaign(self, campaign_id: str, raw: Mapping[str, Any]) -> Campaign:
        """Replace a campaign's terms; its counters and codes are kept."""
        campaign = Campaign.validate({**raw, "id": campaign_id})
        doc = await self.campaigns.find_one_and_update(
            {"_id": campaign.id},
            {"$set": {**campaign.to_doc(), "updated_at": datetime.now(UTC)}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise CouponError(f"id: no campaign {campaign_id!r}")
        if self.known_campaigns is not None:  # this instance's next answer shows the new terms
            self.known_campaigns.put(doc)
        return Campaign.from_doc(doc)

    async def ensure_campaign(self, campaign: Campaign) -> Campaign:
        """Create or update a campaign a strategy owns (its terms follow the config)."""
        for _ in range(3):
            now = datetime.now(UTC)
            try:
                doc = await self.campaigns.find_one_and_update(
                    {"_id": campaign.id},
                    {
                        "$set": {**campaign.to_doc(), "updated_at": now},
                        "$setOnInsert": {"used": 0, "discount_given": 0, "created_at": now},
                    },
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:  # another instance created it first: update it
                continue
            if doc is not None:  # (a lost upsert race may answer None on the embedded server)
                return Campaign.from_doc(doc)
        raise CouponError(f"could not create campaign {campaign.id!r}")

    async def get_campaign(self, campaign_id: str) -> Campaign | None:
        doc = await self.campaigns.find_one({"_id": str(campaign_id)})
        return Campaign.from_doc(doc) if doc else None

    async def list_campaigns(
        self, *, active: bool | None = None, first: int = 50, after: str | None = None
    ) -> list[Campaign]:
        query: dict[str, Any] = {}
        if active is not None:
            query["active"] = active
        if after is not None:
            query["_id"] = {"$gt": str(after)}
        docs = await self.campaigns.find(query).sort("_id", 1).limit(first).to_list(None)
        return [Campaign.from_doc(d) for d in docs]

    async def _require_campaign(self, campaign_id: str) -> Campaign:
        campaign = await self.get_campaign(campaign_id)
        if campaign is None:
            raise CouponError(f"campaignId: no campaign {campaign_id!r}")
        return campaign

    # codes ------------------------------------------------------------------------------

    async def add_shared_code(self, campaign_id: str, code: str) -> CodeRecord:
        """A code any shopper may enter (the campaign's limits apply)."""
        await self._require_campaign(campaign_id)
        normalized = normalize_code(code)
        if not _SHARED_CODE.match(normalized):
            raise CouponError("code: must be 3-40 letters or digits (spaces and dashes ignored)")
        doc = {
            "code": normalized,
            "campaign_id": campaign_id,
            "kind": "shared",
            "max_uses": None,
            "used": 0,
            "created_at": datetime.now(UTC),
        }
        try:
            await self.codes.insert_one(doc)
        except DuplicateKeyError:
            raise CouponError(f"code: {normalized!r} is already in use") from None
        return CodeRecord.from_doc(doc)

    async def generate_codes(self, campaign_id: str, count: int) -> int:
        """Create ``count`` unique single-use codes, in batches; returns how many."""
        limit = self.settings.max_generated_codes
        if not 1 <= count <= limit:
            raise CouponError(f"count: must be between 1 and {limit}, got {count}")
        await self._require_campaign(campaign_id)
        made = 0
        while made < count:
            batch = min(INSERT_BATCH, count - made)
            now = datetime.now(UTC)
            docs = [
                {
                    "code": new_code(self.settings.coupon_code_length),
                    "campaign_id": campaign_id,
                    "kind": "unique",
                    "max_uses": 1,
                    "used": 0,
                    "created_at": now,
                }
                for _ in range(batch)
            ]
            try:
                result = await self.codes.insert_many(docs, ordered=False)
                made += len(result.inserted_ids)
            except BulkWriteError as exc:  # a collision with an existing code: make another
                made += int(exc.details.get("nInserted", 0))
        return made

    async def export_codes(self, campaign_id: str) -> AsyncIterator[CodeRecord]:
        """Every code of a campaign, oldest first, streamed in batches of `EXPORT_BATCH`.

        One cursor in ``_id`` order (the ``campaign_id`` index streams it on MongoDB; the
        embedded server sorts in memory before the first batch, which for 100,000 codes
        takes longer than a request's deadline - `shopfront coupons export` runs with a
        batch job's deadline).
        """
        await self._require_campaign(campaign_id)
        cursor = self.codes.find({"campaign_id": campaign_id}).sort("_id", 1)
        async for doc in cursor.batch_size(EXPORT_BATCH):
            yield CodeRecord.from_doc(doc)

    async def mint_personal_code(
        self,
        campaign_id: str,
        user_id: str,
        strategy: str,
        period: str,
        expires_at: datetime | None,
    ) -> CodeRecord:
        """The shopper's code for this strategy and period, created on first call: the same
        (strategy, shopper, period) always gives the same code, even under concurrency."""
        for _ in range(5):
            try:
                doc = await self.codes.find_one_and_update(
                    {"strategy": strategy, "user_id": user_id, "period": period},
                    {
                        "$setOnInsert": {
                            "code": new_code(self.settings.coupon_code_length),
                            "campaign_id": campaign_id,
                            "kind": "personal",
                            "max_uses": 1,
                            "used": 0,
                            "expires_at": expires_at,
                            "created_at": datetime.now(UTC),
                        }
                    },
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:  # a concurrent mint won, or a code collided: look again
                continue
            # The embedded server may answer a lost upsert race with no document (MongoDB
            # raises a duplicate key error instead): look again either way.
            if doc is not None:
                return CodeRecord.from_doc(doc)
        raise CouponError(f"could not mint a code for {strategy!r}")

    # validation -------------------------------------------------------------------------

    async def resolve(self, ctx: RequestContext, codes: Sequence[str]) -> CouponPricing:
        """Entered codes -> a promotion per code that may apply, a refusal per code that
        cannot (a `CouponSource` for `shopfront.offers.pricing.CartPricer`)."""
        wanted = list(dict.fromkeys(normalize_code(c) for c in codes if c.strip()))
        refused: list[NotApplied] = []
        cap = self.settings.max_coupon_codes
        for code in wanted[cap:]:
            refused.append(_not_applied(code, TOO_MANY_CODES, f"at most {cap} codes per order"))
        wanted = wanted[:cap]
        if not wanted:
            return CouponPricing(refused=tuple(refused))
        found: dict[str, CodeRecord] = {}
        if self.shared_codes is not None:
            for code in wanted:
                doc = self.shared_codes.find_by(code)
                if doc is not None:
                    found[code] = CodeRecord.from_doc(doc)
        unknown = [c for c in wanted if c not in found]
        if unknown:
            for d in await self.codes.find({"code": {"$in": unknown}}).to_list(None):
                found[d["code"]] = CodeRecord.from_doc(d)
        campaign_ids = sorted({c.campaign_id for c in found.values()})
        campaigns: dict[str, Campaign] = {}
        if self.known_campaigns is not None:
            for cid in campaign_ids:
                doc = self.known_campaigns.get(cid)
                if doc is not None:
                    campaigns[cid] = Campaign.from_doc(doc)
        unknown = [cid for cid in campaign_ids if cid not in campaigns]
        if unknown:
            for d in await self.campaigns.find({"_id": {"$in": unknown}}).to_list(None):
                campaigns[d["_id"]] = Campaign.from_doc(d)
        usage: dict[str, int] = {}
        # The shopper's own usage matters only for campaigns with a per-shopper limit.
        limited = [cid for cid, c in campaigns.items() if c.per_shopper_limit is not None]
        if ctx.user_id and limited:
            keys = [_usage_id(cid, ctx.user_id) for cid in limited]
            usage = {
                d["campaign_id"]: int(d.get("count", 0))
                for d in await self.store.collection(USAGE)
                .find({"_id": {"$in": keys}})
                .to_list(None)
            }
        promotions: list[CouponPromotion] = []
        for code in wanted:
            record = found.get(code)
            campaign = campaigns.get(record.campaign_id) if record else None
            if record is None or campaign is None:
                refused.append(_not_applied(code, UNKNOWN_CODE, "this code does not exist"))
                continue
            why = self._refusal(ctx, record, campaign, usage.get(campaign.id, 0))
            if why is not None:
                refused.append(_not_applied(code, *why))
            else:
                promotions.append(CouponPromotion(code, campaign))
        return CouponPricing(promotions=tuple(promotions), refused=tuple(refused))

    @staticmethod
    def _refusal(
        ctx: RequestContext, record: CodeRecord, campaign: Campaign, used_by_shopper: int
    ) -> tuple[str, str] | None:
        why = campaign.refusal(ctx.now) or record.refusal(ctx.now, ctx.user_id)
        if why is not None:
            return why
        segment_miss = campaign.segment.unmet(ctx.profile, ctx.now, ctx.personalized)
        if segment_miss is not None:
            return NOT_ELIGIBLE, segment_miss
        limit = campaign.per_shopper_limit
        if limit is not None and not ctx.user_id:
            return NOT_ELIGIBLE, "sign in to use this code"
        if limit is not None and used_by_shopper >= limit:
            times = "once" if limit == 1 else f"{limit} times"
            return PER_SHOPPER_LIMIT_REACHED, f"you can use this code {times}"
        return None

    # redemption -------------------------------------------------------------------------

    async def recorded(self, request: RedeemRequest) -> RedeemResult | None:
        """The result recorded under the request's idempotency key, if any (raises
        `IdempotencyKeyReused` when it was recorded for different arguments)."""
        doc = await self.store.collection(IDEMPOTENCY).find_one({"_id": request.idempotency_key})
        if doc is None:
            return None
        if doc["fingerprint"] != request.fingerprint:
            raise IdempotencyKeyReused(
                "idempotencyKey: this key was already used with different arguments"
            )
        return RedeemResult.from_doc(doc["result"], replayed=True)

    async def redeem(self, request: RedeemRequest, decision: Money | Refusal) -> RedeemResult:
        """Redeem ``request.code`` for ``decision`` (the coupon's discount on the order, as
        priced), or record the refusal pricing gave.

        Whatever happens, the result returned is the one recorded under the idempotency key:
        a retry gets the first call's result (``replayed``), even when it raced the first
        call. Callers that want to skip pricing for a retry check `recorded` first.
        """
        if isinstance(decision, Refusal):
            return await self._record_refusal(request, decision)
        record_doc = await self.codes.find_one({"code": normalize_code(request.code)})
        if record_doc is None:
            return await self._record_refusal(
                request, Refusal(UNKNOWN_CODE, "this code does not exist")
            )
        record = CodeRecord.from_doc(record_doc)
        async with self._lock(record.campaign_id):
            refusal = await self._precheck(request, record, decision)
            if refusal is None:
                try:
                    return await self._transact(request, record, decision)
                except _Refused as exc:
                    refusal = exc.refusal
                except _KeyTaken:
                    return await self._recorded_or_raise(request)
        return await self._record_refusal(request, refusal)

    def _lock(self, campaign_id: str) -> asyncio.Lock:
        lock = self._locks.get(campaign_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[campaign_id] = lock
        return lock

    async def _precheck(
        self, request: RedeemRequest, record: CodeRecord, amount: Money
    ) -> Refusal | None:
        """Cheap reads that refuse most losers without a transaction (the transaction's
        conditions still decide for the winners), cheapest and likeliest first."""
        now = datetime.now(UTC)
        code_doc = await self.codes.find_one({"code": record.code})
        if code_doc is None:
            return Refusal(UNKNOWN_CODE, "this code does not exist")
        why = CodeRecord.from_doc(code_doc).refusal(now, request.user_id)
        if why is not None:
            return Refusal(*why)
        campaign_doc = await self.campaigns.find_one({"_id": record.campaign_id})
        if campaign_doc is None:
            return Refusal(UNKNOWN_CODE, "this code does not exist")
        campaign = Campaign.from_doc(campaign_doc)
        why = campaign.refusal(now)
        if why is None and amount.currency != campaign.currency:
            why = NOT_ELIGIBLE, f"this code is for {campaign.currency} orders"
        left = campaign.budget_left
        if why is None and left is not None and amount.amount > left:
            why = BUDGET_EXHAUSTED, "this offer has run out"
        if why is not None:
            return Refusal(*why)
        if campaign.per_shopper_limit is not None:
            usage = await self.store.collection(USAGE).find_one(
                {"_id": _usage_id(record.campaign_id, request.user_id)}
            )
            if usage is not None and usage["count"] >= campaign.per_shopper_limit:
                return Refusal(PER_SHOPPER_LIMIT_REACHED, "you have already used this code")
        existing = await self.store.collection(REDEMPTIONS).find_one(
            _redeemed_filter(record.campaign_id, request), {"_id": 1}
        )
        if existing is not None:
            return Refusal(ALREADY_REDEEMED, f"already redeemed for order {request.order_id}")
        return None

    async def _transact(
        self, request: RedeemRequest, record: CodeRecord, amount: Money
    ) -> RedeemResult:
        now = _now()
        redemption = Redemption(
            id=uuid.uuid4().hex,
            campaign_id=record.campaign_id,
            code=record.code,
            user_id=request.user_id,
            order_id=request.order_id,
            amount=amount,
            status="redeemed",
            redeemed_at=now,
            strategy=record.strategy,
        )
        result = RedeemResult(redemption=redemption)
        db = self.store

        async def work(session: Any) -> None:
            changed = await self.campaigns.update_one(
                _campaign_filter(record.campaign_id, amount, now),
                {"$inc": {"used": 1, "discount_given": amount.amount}},
                session=session,
            )
            if changed.modified_count != 1:
                raise _Refused(await self._why_campaign(record.campaign_id, amount, now, session))
            if record.max_uses is not None:
                changed = await self.codes.update_one(
                    {"code": record.code, "used": {"$lt": record.max_uses}},
                    {"$inc": {"used": 1}},
                    session=session,
                )
                if changed.modified_count != 1:
                    raise _Refused(Refusal(USAGE_LIMIT_REACHED, "this code has already been used"))
            usage = await db.collection(USAGE).find_one_and_update(
                {"_id": _usage_id(record.campaign_id, request.user_id)},
                {
                    "$inc": {"count": 1},
                    "$set": {"updated_at": now},  # retention counts from the last use
                    "$setOnInsert": {"campaign_id": record.campaign_id, "user_id": request.user_id},
                },
                upsert=True,
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            limit = await self._per_shopper_limit(record.campaign_id, session)
            if limit is not None and usage["count"] > limit:
                raise _Refused(
                    Refusal(PER_SHOPPER_LIMIT_REACHED, "you have already used this code")
                )
            try:
                await db.collection(REDEMPTIONS).insert_one(redemption.to_doc(), session=session)
            except DuplicateKeyError:
                raise _Refused(
                    Refusal(ALREADY_REDEEMED, f"already redeemed for order {request.order_id}")
                ) from None
            try:
                await db.collection(IDEMPOTENCY).insert_one(
                    self._idempotency_doc(request, result, now), session=session
                )
            except DuplicateKeyError:
                raise _KeyTaken from None

        await db.in_transaction(work)
        await self._refresh_known(record.campaign_id, record.code)
        return result

    async def _refresh_known(self, campaign_id: str, code: str) -> None:
        """After a redemption or release through this instance: its in-memory campaign and
        shared code show the new counters at once (other instances get them by change
        stream)."""
        if self.known_campaigns is not None:
            doc = await self.campaigns.find_one({"_id": campaign_id})
            if doc is not None:
                self.known_campaigns.put(doc)
        if self.shared_codes is not None and self.shared_codes.find_by(code) is not None:
            doc = await self.codes.find_one({"code": code})
            if doc is not None:
                self.shared_codes.put(doc)

    async def _per_shopper_limit(self, campaign_id: str, session: Any) -> int | None:
        doc = await self.campaigns.find_one(
            {"_id": campaign_id}, {"per_shopper_limit": 1}, session=session
        )
        return doc.get("per_shopper_limit") if doc else None

    async def _why_campaign(
        self, campaign_id: str, amount: Money, now: datetime, session: Any
    ) -> Refusal:
        """Which of the campaign's conditions failed (read in the same transaction)."""
        doc = await self.campaigns.find_one({"_id": campaign_id}, session=session)
        if doc is None:
            return Refusal(UNKNOWN_CODE, "this code does not exist")
        campaign = Campaign.from_doc(doc)
        why = campaign.refusal(now)
        if why is not None:
            return Refusal(*why)
        if amount.currency != campaign.currency:
            return Refusal(NOT_ELIGIBLE, f"this code is for {campaign.currency} orders")
        return Refusal(BUDGET_EXHAUSTED, "this offer has run out")

    def _idempotency_doc(
        self, request: RedeemRequest, result: RedeemResult, now: datetime
    ) -> dict[str, Any]:
        return {
            "_id": request.idempotency_key,
            # Erasure and export find the record by it (personal_data registry).
            "user_id": request.user_id,
            "fingerprint": request.fingerprint,
            "result": result.to_doc(),
            "created_at": now,
            "expires_at": now + timedelta(days=self.settings.idempotency_ttl_days),
        }

    async def _record_refusal(self, request: RedeemRequest, refusal: Refusal) -> RedeemResult:
        result = RedeemResult(refusal=refusal)
        doc = self._idempotency_doc(request, result, datetime.now(UTC))
        try:
            await self.store.collection(IDEMPOTENCY).insert_one(doc)
        except DuplicateKeyError:
            return await self._recorded_or_raise(request)
        return result

    async def _recorded_or_raise(self, request: RedeemRequest) -> RedeemResult:
        earlier = await self.recorded(request)
        if earlier is None:  # pragma: no cover - the key's record cannot vanish meanwhile
            raise CouponError("idempotencyKey: the first call's result is not available")
        return earlier

    # release ----------------------------------------------------------------------------

    async def release(self, order_id: str) -> ReleaseResult:
        """Undo the redemptions of a cancelled order (idempotent: a second call releases
        nothing and lists them as already released)."""
        coll = self.store.collection(REDEMPTIONS)
        docs = await coll.find({"order_id": order_id}).sort("redeemed_at", 1).to_list(None)
        released: list[Redemption] = []
        already: list[Redemption] = []
        for doc in docs:
            redemption = Redemption.from_doc(doc)
            if redemption.status != "redeemed":
                already.append(redemption)
                continue
            async with self._lock(redemption.campaign_id):
                done = await self._release_one(redemption)
            (released if done else already).append(
                replace(redemption, status="released", released_at=done or redemption.released_at)
            )
        return ReleaseResult(order_id, tuple(released), tuple(already))

    async def _release_one(self, redemption: Redemption) -> datetime | None:
        now = _now()
        db = self.store

        async def work(session: Any) -> bool:
            changed = await db.collection(REDEMPTIONS).update_one(
                {"_id": redemption.id, "status": "redeemed"},
                {"$set": {"status": "released", "released_at": now}},
                session=session,
            )
            if changed.modified_count != 1:
                return False  # released meanwhile
            await self.campaigns.update_one(
                {"_id": redemption.campaign_id},
                {"$inc": {"used": -1, "discount_given": -redemption.amount.amount}},
                session=session,
            )
            await self.codes.update_one(
                {"code": redemption.code, "max_uses": {"$ne": None}, "used": {"$gt": 0}},
                {"$inc": {"used": -1}},
                session=session,
            )
            await db.collection(USAGE).update_one(
                {"_id": _usage_id(redemption.campaign_id, redemption.user_id), "count": {"$gt": 0}},
                {"$inc": {"count": -1}},
                session=session,
            )
            return True

        if not await db.in_transaction(work):
            return None
        await self._refresh_known(redemption.campaign_id, redemption.code)
        return now


def _now() -> datetime:
    """Now, to the millisecond MongoDB stores, so a result read back equals the original."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _usage_id(campaign_id: str, user_id: str) -> str:
    return f"{campaign_id}|{user_id}"


def _redeemed_filter(campaign_id: str, request: RedeemRequest) -> dict[str, Any]:
    return {
        "campaign_id": campaign_id,
        "user_id": request.user_id,
        "order_id": request.order_id,
        "status": "redeemed",
    }


def _campaign_filter(campaign_id: str, amount: Money, now: datetime) -> dict[str, Any]:
    """The campaign may give ``amount`` now: active, in its window, under its usage limit
    and within its budget - checked by the database in the same update."""

    def unset(name: str) -> dict[str, Any]:
        return {"$eq": [{"$ifNull": [f"${name}", None]}, None]}

    return {
        "_id": campaign_id,
        "active": True,
        "currency": amount.currency,
        "$and": [
            {"$or": [{"starts_at": None}, {"starts_at": {"$lte": now}}]},
            {"$or": [{"ends_at": None}, {"ends_at": {"$gt": now}}]},
        ],
        "$expr": {
            "$and": [
                {"$or": [unset("usage_limit"), {"$lt": ["$used", "$usage_limit"]}]},
                {
                    "$or": [
                        unset("budget"),
                        {"$lte": [{"$add": ["$discount_given", amount.amount]}, "$budget.amount"]},
                    ]
                },
            ]
        },
    }
