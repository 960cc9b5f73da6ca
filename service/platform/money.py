"""Money: integer minor units with an ISO 4217 currency. Never a float.

Arithmetic that needs fractions (percentages) goes through `Decimal` and comes back with one
rounding rule, `ROUND_HALF_EVEN` ("banker's rounding") to the currency's minor unit, so repeated
discounts do not drift in the shop's favour or the shopper's.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache

import iso4217

ROUNDING = ROUND_HALF_EVEN


class MoneyError(ValueError):
    """Invalid money: unknown currency, non-integer amount, or mixed currencies."""


@cache
def _currencies() -> dict[str, int]:
    # XTS (testing) and XXX (no currency) are codes, but not money a shop can charge.
    return {c.code: (c.exponent or 0) for c in iso4217.Currency if c.code not in ("XTS", "XXX")}


def is_currency(code: str) -> bool:
    return code in _currencies()


def minor_unit_digits(currency: str) -> int:
    """Digits after the decimal point for ``currency`` (EUR 2, JPY 0, BHD 3)."""
    try:
        return _currencies()[currency]
    except KeyError:
        raise MoneyError(f"{currency!r} is not an ISO 4217 currency code") from None


def check_currency(code: str) -> str:
    if not isinstance(code, str) or not is_currency(code):
        raise MoneyError(f"{code!r} is not an ISO 4217 currency code")
    return code


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of money: integer minor units (cents) of an ISO 4217 currency. Never a
    float; arithmetic refuses to mix currencies (`MoneyError`)."""

    amount: int  # minor units: 1999 EUR is 19.99 EUR
    currency: str  # ISO 4217 code, e.g. "EUR"

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise MoneyError(
                f"amount must be an integer number of minor units, got {self.amount!r}"
            )
        check_currency(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, quantity: int) -> Money:
        if not isinstance(quantity, int):
            raise MoneyError("money is multiplied by whole quantities only; use percent()")
        return Money(self.amount * quantity, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def percent(self, pct: Decimal | int | str) -> Money:
        """``pct`` percent of this amount, rounded half-even to the minor unit."""
        value = (Decimal(self.amount) * Decimal(pct) / Decimal(100)).quantize(
            Decimal(1), rounding=ROUNDING
        )
        return Money(int(value), self.currency)

    def clamp_min_zero(self) -> Money:
        return self if self.amount >= 0 else Money(0, self.currency)

    def to_decimal(self) -> Decimal:
        return Decimal(self.amount).scaleb(-minor_unit_digits(self.currency))

    def format(self) -> str:
        """``12.00 EUR`` — the plain form used in nudges and messages."""
        digits = minor_unit_digits(self.currency)
        return f"{self.to_decimal():.{digits}f} {self.currency}"

    def to_doc(self) -> dict[str, object]:
        return {"amount": self.amount, "currency": self.currency}

    @classmethod
    def from_doc(cls, doc: dict[str, object]) -> Money:
        amount = doc.get("amount")
        currency = doc.get("currency")
        if not isinstance(amount, int) or not isinstance(currency, str):
            raise MoneyError(f"malformed money document {doc!r}")
        return cls(amount, currency)


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` minor units over ``weights`` so the parts add up exactly to ``total``.

    Largest-remainder method: each part gets its floor share, the leftover units go to the
    largest remainders (ties to the earlier line), so allocation is deterministic.
    """
    if total < 0:
        raise MoneyError("cannot allocate a negative amount")
    if not weights:
        if total:
            raise MoneyError("cannot allocate a non-zero amount over no lines")
        return []
    if any(w < 0 for w in weights):
        raise MoneyError("allocation weights must not be negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        weights = [1] * len(weights)
        weight_sum = len(weights)
    parts = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    leftover = total - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:leftover]:
        parts[i] += 1
    return parts
