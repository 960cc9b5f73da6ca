"""Redemption requests and results: what checkout sends and what it gets back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shopfront.offers.contract import (
    NotApplied,
)
from shopfront.platform.money import Money

if TYPE_CHECKING:
    pass


# -- redemption values ---------------------------------------------------------------------


@dataclass(frozen=True)
class RedeemRequest:
    """One ``redeemCoupon`` call. ``fingerprint`` digests all of the caller's arguments
    (with the cart), so a retry can be told from a different call with the same key."""

    code: str
    user_id: str
    order_id: str
    idempotency_key: str
    fingerprint: str


@dataclass(frozen=True)
class Redemption:
    id: str
    campaign_id: str
    code: str
    user_id: str
    order_id: str
    amount: Money
    status: str  # "redeemed" | "released"
    redeemed_at: datetime
    released_at: datetime | None = None
    strategy: str | None = None  # the coupon strategy that minted the code (attribution)

    def to_doc(self) -> dict[str, Any]:
        return {
            "_id": self.id,
            "campaign_id": self.campaign_id,
            "code": self.code,
            "strategy": self.strategy,
            "user_id": self.user_id,
            "order_id": self.order_id,
            "amount": self.amount.to_doc(),
            "status": self.status,
            "redeemed_at": self.redeemed_at,
            "released_at": self.released_at,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Redemption:
        return cls(
            id=doc["_id"],
            campaign_id=doc["campaign_id"],
            code=doc["code"],
            user_id=doc["user_id"],
            order_id=doc["order_id"],
            amount=Money.from_doc(doc["amount"]),
            status=doc["status"],
            redeemed_at=doc["redeemed_at"],
            released_at=doc.get("released_at"),
            strategy=doc.get("strategy"),
        )


@dataclass(frozen=True)
class Refusal:
    """Why a code gives no discount: a code from `REFUSAL_CODES` and a shopper-readable
    message; ``missing`` for MIN_SPEND_NOT_MET, ``conflicts`` for DOES_NOT_COMBINE."""

    code: str
    message: str
    missing: Money | None = None
    conflicts: tuple[str, ...] = ()

    @classmethod
    def of(cls, item: NotApplied) -> Refusal:
        return cls(item.code, item.reason, item.missing, item.conflicts)


@dataclass(frozen=True)
class RedeemResult:
    """The result of a redemption: the redemption, or a refusal. ``replayed`` when it is
    the recorded result of an earlier call with the same idempotency key."""

    redemption: Redemption | None = None
    refusal: Refusal | None = None
    replayed: bool = False

    @property
    def ok(self) -> bool:
        return self.redemption is not None

    def to_doc(self) -> dict[str, Any]:
        refusal = self.refusal
        return {
            "redemption": self.redemption.to_doc() if self.redemption else None,
            "refusal": None
            if refusal is None
            else {
                "code": refusal.code,
                "message": refusal.message,
                "missing": refusal.missing.to_doc() if refusal.missing else None,
                "conflicts": list(refusal.conflicts),
            },
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any], replayed: bool = False) -> RedeemResult:
        redemption = doc.get("redemption")
        refusal = doc.get("refusal")
        return cls(
            redemption=Redemption.from_doc(redemption) if redemption else None,
            refusal=None
            if refusal is None
            else Refusal(
                refusal["code"],
                refusal["message"],
                Money.from_doc(refusal["missing"]) if refusal.get("missing") else None,
                tuple(refusal.get("conflicts") or ()),
            ),
            replayed=replayed,
        )


@dataclass(frozen=True)
class ReleaseResult:
    order_id: str
    released: tuple[Redemption, ...]
    already_released: tuple[Redemption, ...]


class _Refused(Exception):
    """Aborts a redemption transaction with a refusal."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class _KeyTaken(Exception):
    """Another call recorded a result under this idempotency key first."""
