"""Coupon campaigns and their codes: terms, validation, code alphabet and refusal codes."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shopfront.offers.contract import (
    ProductScope,
)
from shopfront.offers.rules import (
    RuleError,
    Segment,
    bool_value,
    check_window,
    optional_datetime,
    optional_int,
    optional_money,
    percent_value,
    same_currency,
    scope_to_doc,
    scope_value,
    text_value,
)
from shopfront.platform.money import Money, MoneyError, check_currency

if TYPE_CHECKING:
    pass


CAMPAIGNS = "coupon_campaigns"
CODES = "coupon_codes"
REDEMPTIONS = "coupon_redemptions"
USAGE = "coupon_usage"
IDEMPOTENCY = "coupon_idempotency"


# Why a code gives no discount.
UNKNOWN_CODE = "UNKNOWN_CODE"
INACTIVE = "INACTIVE"
NOT_STARTED = "NOT_STARTED"
EXPIRED = "EXPIRED"
MIN_SPEND_NOT_MET = "MIN_SPEND_NOT_MET"
MIN_QUANTITY_NOT_MET = "MIN_QUANTITY_NOT_MET"
NOT_ELIGIBLE = "NOT_ELIGIBLE"
USAGE_LIMIT_REACHED = "USAGE_LIMIT_REACHED"
PER_SHOPPER_LIMIT_REACHED = "PER_SHOPPER_LIMIT_REACHED"
BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"
DOES_NOT_COMBINE = "DOES_NOT_COMBINE"
ALREADY_REDEEMED = "ALREADY_REDEEMED"
TOO_MANY_CODES = "TOO_MANY_CODES"

REFUSAL_CODES = (
    UNKNOWN_CODE,
    INACTIVE,
    NOT_STARTED,
    EXPIRED,
    MIN_SPEND_NOT_MET,
    MIN_QUANTITY_NOT_MET,
    NOT_ELIGIBLE,
    USAGE_LIMIT_REACHED,
    PER_SHOPPER_LIMIT_REACHED,
    BUDGET_EXHAUSTED,
    DOES_NOT_COMBINE,
    ALREADY_REDEEMED,
    TOO_MANY_CODES,
)

# Coupons run after promotions in the chain.
COUPON_PRIORITY = 10_000
# Unambiguous: no 0/O, 1/I/L. 31 letters: a 12-character code carries ~59 bits.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
INSERT_BATCH = 1000
EXPORT_BATCH = 1000
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
_SHARED_CODE = re.compile(r"^[A-Z0-9]{3,40}$")


class CouponError(ValueError):
    """A campaign or code request was refused; the message names the field."""


class IdempotencyKeyReused(CouponError):
    """The idempotency key was first used with different arguments."""


def normalize_code(raw: str) -> str:
    """How a shopper may type a code: any case, with spaces or dashes."""
    return re.sub(r"[\s-]+", "", raw).upper()


def new_code(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def fingerprint(*parts: Any) -> str:
    """A digest of a call's arguments, to tell a retried call from a different one."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# -- campaigns -----------------------------------------------------------------------------


class DiscountKind(StrEnum):
    PERCENT = "percent"
    FIXED = "fixed"
    FREE_SHIPPING = "free_shipping"
    FREE_PRODUCT = "free_product"


@dataclass(frozen=True)
class CouponDiscount:
    """What a coupon gives. ``max_amount`` caps a percentage; ``product_id`` is the free
    product (one unit, when it is in the cart)."""

    kind: DiscountKind
    percent: Decimal | None = None
    amount: Money | None = None
    max_amount: Money | None = None
    product_id: str | None = None

    @classmethod
    def from_doc(cls, raw: Any, field: str = "discount") -> CouponDiscount:
        if not isinstance(raw, Mapping):
            raise RuleError(field, "is required: {kind, percent | amount | product_id}")
        try:
            kind = DiscountKind(str(raw.get("kind")))
        except ValueError:
            choices = ", ".join(k.value for k in DiscountKind)
            raise RuleError(f"{field}.kind", f"must be one of {choices}") from None
        given = {k for k, v in raw.items() if v is not None and k != "kind"}
        needed = {
            DiscountKind.PERCENT: {"percent"},
            DiscountKind.FIXED: {"amount"},
            DiscountKind.FREE_SHIPPING: set(),
            DiscountKind.FREE_PRODUCT: {"product_id"},
        }[kind]
        allowed = needed | ({"max_amount"} if kind is DiscountKind.PERCENT else set())
        if not needed <= given or given - allowed:
            wanted = ", ".join(sorted(needed)) or "nothing else"
            raise RuleError(field, f"a {kind.value} discount takes {wanted}")
        discount = cls(
            kind=kind,
            percent=percent_value(raw["percent"], f"{field}.percent")
            if "percent" in given
            else None,
            amount=optional_money(raw.get("amount"), f"{field}.amount"),
            max_amount=optional_money(raw.get("max_amount"), f"{field}.max_amount"),
            product_id=(
                text_value(raw["product_id"], f"{field}.product_id")
                if "product_id" in given
                else None
            ),
        )
        if discount.amount is not None and discount.amount.amount == 0:
            raise RuleError(f"{field}.amount.amount", "must be more than 0")
        return discount

    def to_doc(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "percent": str(self.percent) if self.percent is not None else None,
            "amount": self.amount.to_doc() if self.amount else None,
            "max_amount": self.max_amount.to_doc() if self.max_amount else None,
            "product_id": self.product_id,
        }

    def describe(self) -> str:
        if self.kind is DiscountKind.PERCENT:
            assert self.percent is not None
            return f"{self.percent.normalize():f}% off"
        if self.kind is DiscountKind.FIXED:
            assert self.amount is not None
            return f"{self.amount.format()} off"
        if self.kind is DiscountKind.FREE_SHIPPING:
            return "free shipping"
        return "a free gift"


@dataclass(frozen=True)
class Campaign:
    """A coupon campaign's terms and counters (``used``, ``discount_given`` in minor units)."""

    id: str
    title: str
    currency: str
    discount: CouponDiscount
    description: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    min_spend: Money | None = None
    min_quantity: int | None = None
    eligible: ProductScope = field(default_factory=ProductScope)
    segment: Segment = field(default_factory=Segment)
    usage_limit: int | None = None
    per_shopper_limit: int | None = None
    budget: Money | None = None
    combines_with_promotions: bool = False
    active: bool = True
    strategy: str | None = None
    used: int = 0
    discount_given: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def validate(cls, raw: Mapping[str, Any]) -> Campaign:
        """A campaign from client input; raises `CouponError` naming the field."""
        try:
            return cls._validate(raw)
        except RuleError as exc:
            raise CouponError(str(exc)) from None

    @classmethod
    def _validate(cls, raw: Mapping[str, Any]) -> Campaign:
        cid = text_value(raw.get("id"), "id", max_len=100)
        if not _ID.match(cid):
            raise RuleError("id", "must be letters, digits or . _ : - (starting with either)")
        try:
            currency = check_currency(str(raw.get("currency") or "").strip().upper())
        except MoneyError as exc:
            raise RuleError("currency", str(exc)) from None
        campaign = cls(
            id=cid,
            title=text_value(raw.get("title"), "title"),
            description=text_value(
                raw.get("description"), "description", max_len=2000, required=False
            ),
            currency=currency,
            discount=CouponDiscount.from_doc(raw.get("discount")),
            starts_at=optional_datetime(raw.get("starts_at"), "starts_at"),
            ends_at=optional_datetime(raw.get("ends_at"), "ends_at"),
            min_spend=optional_money(raw.get("min_spend"), "min_spend"),
            min_quantity=optional_int(raw.get("min_quantity"), "min_quantity", minimum=1),
            eligible=scope_value(raw.get("eligible"), "eligible"),
            segment=Segment.from_doc(raw.get("segment")),
            usage_limit=optional_int(raw.get("usage_limit"), "usage_limit", minimum=1),
            per_shopper_limit=optional_int(
                raw.get("per_shopper_limit"), "per_shopper_limit", minimum=1
            ),
            budget=optional_money(raw.get("budget"), "budget"),
            combines_with_promotions=bool_value(
                raw.get("combines_with_promotions", False), "combines_with_promotions"
            ),
            active=bool_value(raw.get("active", True), "active"),
            strategy=raw.get("strategy"),
        )
        check_window(campaign.starts_at, campaign.ends_at, "campaign")
        amounts = (
            campaign.min_spend,
            campaign.budget,
            campaign.discount.amount,
            campaign.discount.max_amount,
            Money(0, currency),
        )
        same_currency(amounts, "campaign")
        return campaign

    def to_doc(self) -> dict[str, Any]:
        """The terms as stored (counters and timestamps are the store's). Every field is
        written, unset ones as null, so conditional updates can test them."""
        return {
            "title": self.title,
            "description": self.description,
            "currency": self.currency,
            "discount": self.discount.to_doc(),
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "min_spend": self.min_spend.to_doc() if self.min_spend else None,
            "min_quantity": self.min_quantity,
            "eligible": scope_to_doc(self.eligible),
            "segment": self.segment.to_doc(),
            "usage_limit": self.usage_limit,
            "per_shopper_limit": self.per_shopper_limit,
            "budget": self.budget.to_doc() if self.budget else None,
            "combines_with_promotions": self.combines_with_promotions,
            "active": self.active,
            "strategy": self.strategy,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Campaign:
        raw = {**doc, "id": doc["_id"]}
        campaign = cls._validate(raw)
        return replace(
            campaign,
            used=int(doc.get("used", 0)),
            discount_given=int(doc.get("discount_given", 0)),
            created_at=doc.get("created_at"),
            updated_at=doc.get("updated_at"),
        )

    @property
    def budget_left(self) -> int | None:
        return None if self.budget is None else self.budget.amount - self.discount_given

    def refusal(self, now: datetime) -> tuple[str, str] | None:
        """Why no code of this campaign can be used now, regardless of the cart."""
        if not self.active:
            return INACTIVE, "this code is no longer active"
        if self.starts_at is not None and now < self.starts_at:
            return NOT_STARTED, f"this code is valid from {self.starts_at:%Y-%m-%d %H:%M} UTC"
        if self.ends_at is not None and now >= self.ends_at:
            return EXPIRED, "this code has expired"
        if self.usage_limit is not None and self.used >= self.usage_limit:
            return USAGE_LIMIT_REACHED, "this code has reached its usage limit"
        left = self.budget_left
        if left is not None and left <= 0:
            return BUDGET_EXHAUSTED, "this offer has run out"
        return None


@dataclass(frozen=True)
class CodeRecord:
    """A code: shared (no per-code limit), unique (single use) or personal (one shopper)."""

    code: str
    campaign_id: str
    kind: str
    used: int = 0
    max_uses: int | None = None
    user_id: str | None = None
    strategy: str | None = None
    period: str | None = None
    expires_at: datetime | None = None
    created_at: datetime | None = None

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> CodeRecord:
        return cls(
            code=doc["code"],
            campaign_id=doc["campaign_id"],
            kind=doc.get("kind", "shared"),
            used=int(doc.get("used", 0)),
            max_uses=doc.get("max_uses"),
            user_id=doc.get("user_id"),
            strategy=doc.get("strategy"),
            period=doc.get("period"),
            expires_at=doc.get("expires_at"),
            created_at=doc.get("created_at"),
        )

    def refusal(self, now: datetime, user_id: str | None) -> tuple[str, str] | None:
        if self.user_id is not None and self.user_id != user_id:
            return NOT_ELIGIBLE, "this code belongs to another shopper's account"
        if self.expires_at is not None and now >= self.expires_at:
            return EXPIRED, "this code has expired"
        if self.max_uses is not None and self.used >= self.max_uses:
            return USAGE_LIMIT_REACHED, "this code has already been used"
        return None
