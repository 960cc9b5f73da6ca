"""Typed rule values shared by promotions and coupon campaigns.

Both are stored as plain documents (MongoDB, or a TOML section) and validated into these
values with errors that name the field, so a merchant sees ``conditions.min_subtotal.amount:
must be a whole number of minor units`` instead of a stack trace. Money is a
``{"amount": <minor units>, "currency": "EUR"}`` document; percentages are strings or
numbers read as `Decimal` (``"12.5"``); dates are timezone-aware datetimes or ISO 8601 text.

A `Segment` is a typed condition on the shopper's profile (first order, days since the last
purchase, total spent, affinity for a category). Segments read personal data, so a shopper
without a profile, or who withheld consent, is never in a segment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from shopfront.offers.contract import ProductScope
from shopfront.platform.money import Money, MoneyError
from shopfront.shoppers.profile_view import Profile

CATEGORY_SEPARATOR = " > "
MAX_SCOPE_ENTRIES = 1000


class RuleError(ValueError):
    """A rule value failed validation; the message starts with the field's path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


# -- scalar values -------------------------------------------------------------------------


def money_value(raw: Any, field: str) -> Money:
    """A `Money` from a money document (or a `Money`); amounts are never negative."""
    if isinstance(raw, Money):
        money = raw
    elif isinstance(raw, Mapping):
        amount, currency = raw.get("amount"), raw.get("currency")
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise RuleError(f"{field}.amount", f"must be whole minor units, got {amount!r}")
        try:
            money = Money(amount, str(currency or "").strip().upper())
        except MoneyError as exc:
            raise RuleError(f"{field}.currency", str(exc)) from None
    else:
        raise RuleError(field, "must be an amount in minor units with a currency")
    if money.amount < 0:
        raise RuleError(f"{field}.amount", f"must not be negative, got {money.amount}")
    return money


def optional_money(raw: Any, field: str) -> Money | None:
    return None if raw is None else money_value(raw, field)


def percent_value(raw: Any, field: str) -> Decimal:
    """A percentage in (0, 100], exact: floats are read through their shortest text."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        raise RuleError(field, f"must be a number between 0 and 100, got {raw!r}")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise RuleError(field, f"must be a number between 0 and 100, got {raw!r}") from None
    if not value.is_finite() or not Decimal(0) < value <= Decimal(100):
        raise RuleError(field, f"must be more than 0 and at most 100, got {raw!r}")
    return value


def int_value(raw: Any, field: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise RuleError(field, f"must be a whole number, got {raw!r}")
    if raw < minimum:
        raise RuleError(field, f"must be at least {minimum}, got {raw}")
    if maximum is not None and raw > maximum:
        raise RuleError(field, f"must be at most {maximum}, got {raw}")
    return raw


def optional_int(
    raw: Any, field: str, *, minimum: int = 0, maximum: int | None = None
) -> int | None:
    return None if raw is None else int_value(raw, field, minimum=minimum, maximum=maximum)


def datetime_value(raw: Any, field: str) -> datetime:
    """A timezone-aware datetime; naive values and text without an offset are refused."""
    value = raw
    if isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError:
            raise RuleError(field, f"must be an ISO 8601 date-time, got {raw!r}") from None
    if not isinstance(value, datetime):
        raise RuleError(field, f"must be a date-time, got {raw!r}")
    if value.tzinfo is None:
        # MongoDB hands back naive UTC datetimes to clients without tz_aware; Shopfront's
        # store is tz-aware, so a naive value here came from a client and is ambiguous.
        raise RuleError(field, "must include a UTC offset (e.g. 2025-06-01T00:00:00Z)")
    return value.astimezone(UTC)


def optional_datetime(raw: Any, field: str) -> datetime | None:
    return None if raw is None else datetime_value(raw, field)


def text_value(raw: Any, field: str, *, max_len: int = 200, required: bool = True) -> str:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if required:
            raise RuleError(field, "is required")
        return ""
    if not isinstance(raw, str):
        raise RuleError(field, f"must be text, got {type(raw).__name__}")
    value = raw.strip()
    if len(value) > max_len:
        raise RuleError(field, f"is longer than {max_len} characters")
    return value


def strings_value(raw: Any, field: str, *, limit: int = MAX_SCOPE_ENTRIES) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str) or not isinstance(raw, Iterable):
        raise RuleError(field, "must be a list of text values")
    items: list[str] = []
    for i, item in enumerate(raw):
        items.append(text_value(item, f"{field}[{i}]"))
    if len(items) > limit:
        raise RuleError(field, f"has {len(items)} entries; at most {limit}")
    return tuple(dict.fromkeys(items))  # de-duplicated, first occurrence order


def bool_value(raw: Any, field: str) -> bool:
    if not isinstance(raw, bool):
        raise RuleError(field, f"must be true or false, got {raw!r}")
    return raw


def check_window(starts_at: datetime | None, ends_at: datetime | None, field: str) -> None:
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise RuleError(f"{field}.ends_at", "must be after starts_at")


def same_currency(values: Iterable[Money | None], field: str) -> str | None:
    """The one currency of ``values`` (None when there is no money); mixing is an error."""
    currencies = {m.currency for m in values if m is not None}
    if len(currencies) > 1:
        raise RuleError(field, f"amounts must share one currency, got {sorted(currencies)}")
    return next(iter(currencies), None)


# -- product scopes ------------------------------------------------------------------------


def category_path(text: str) -> tuple[str, ...]:
    """``"Shoes > Running"`` -> ``("Shoes", "Running")``."""
    return tuple(part.strip() for part in text.split(CATEGORY_SEPARATOR.strip()) if part.strip())


def category_text(path: tuple[str, ...]) -> str:
    return CATEGORY_SEPARATOR.join(path)


def scope_value(raw: Any, field: str) -> ProductScope:
    """A `ProductScope` from ``{"product_ids": [...], "categories": ["Shoes > Running"],
    "brands": [...]}``; missing or empty means every product."""
    if raw is None:
        return ProductScope()
    if isinstance(raw, ProductScope):
        return raw
    if not isinstance(raw, Mapping):
        raise RuleError(field, "must have product_ids, categories and/or brands")
    unknown = set(raw) - {"product_ids", "categories", "brands"}
    if unknown:
        raise RuleError(field, f"unknown keys {sorted(unknown)}")
    categories = []
    for i, text in enumerate(strings_value(raw.get("categories"), f"{field}.categories")):
        path = category_path(text)
        if not path:
            raise RuleError(f"{field}.categories[{i}]", "must name a category")
        categories.append(path)
    return ProductScope(
        product_ids=frozenset(strings_value(raw.get("product_ids"), f"{field}.product_ids")),
        categories=frozenset(categories),
        brands=frozenset(strings_value(raw.get("brands"), f"{field}.brands")),
    )


def scope_to_doc(scope: ProductScope) -> dict[str, list[str]]:
    return {
        "product_ids": sorted(scope.product_ids),
        "categories": sorted(category_text(c) for c in scope.categories),
        "brands": sorted(scope.brands),
    }


def describe_scope(scope: ProductScope) -> str:
    """Shopper-readable: ``"Shoes > Running, Acme"``, or ``"any product"``."""
    if scope.everything:
        return "any product"
    parts = [category_text(c) for c in sorted(scope.categories)] + sorted(scope.brands)
    if scope.product_ids:
        parts.append("selected products")
    return ", ".join(parts)


# -- segments ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryAffinity:
    """The shopper's affinity for ``category`` is at least ``min_ratio`` of their strongest
    category affinity (profile scores are only meaningful as ratios)."""

    category: tuple[str, ...]
    min_ratio: float = 0.5


@dataclass(frozen=True)
class Segment:
    """Typed conditions on the shopper's profile; every condition set must hold.

    ``first_order``: True for shoppers without an order yet, False for returning shoppers.
    ``min_days_since_last_purchase`` / ``max_days_since_last_purchase``: time since the last
    order (a shopper who never ordered matches neither). ``min_total_spent`` /
    ``max_total_spent``: lifetime spend, in that currency. ``category_affinity``: see
    `CategoryAffinity`.
    """

    first_order: bool | None = None
    min_orders: int | None = None
    min_days_since_last_purchase: int | None = None
    max_days_since_last_purchase: int | None = None
    min_total_spent: Money | None = None
    max_total_spent: Money | None = None
    category_affinity: CategoryAffinity | None = None

    @property
    def everyone(self) -> bool:
        return self == Segment()

    @classmethod
    def from_doc(cls, raw: Any, field: str = "segment") -> Segment:
        if raw is None:
            return cls()
        if isinstance(raw, Segment):
            return raw
        if not isinstance(raw, Mapping):
            raise RuleError(field, "must be a set of profile conditions")
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(raw) - known
        if unknown:
            raise RuleError(field, f"unknown conditions {sorted(unknown)}")
        first_order = raw.get("first_order")
        if first_order is not None:
            bool_value(first_order, f"{field}.first_order")
        affinity = None
        aff_raw = raw.get("category_affinity")
        if aff_raw is not None:
            if not isinstance(aff_raw, Mapping):
                raise RuleError(f"{field}.category_affinity", "must have category and min_ratio")
            path = category_path(
                text_value(aff_raw.get("category"), f"{field}.category_affinity.category")
            )
            ratio = aff_raw.get("min_ratio", 0.5)
            if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 1:
                raise RuleError(
                    f"{field}.category_affinity.min_ratio", f"must be in (0, 1], got {ratio!r}"
                )
            affinity = CategoryAffinity(path, float(ratio))
        segment = cls(
            first_order=first_order,
            min_orders=optional_int(raw.get("min_orders"), f"{field}.min_orders"),
            min_days_since_last_purchase=optional_int(
                raw.get("min_days_since_last_purchase"), f"{field}.min_days_since_last_purchase"
            ),
            max_days_since_last_purchase=optional_int(
                raw.get("max_days_since_last_purchase"), f"{field}.max_days_since_last_purchase"
            ),
            min_total_spent=optional_money(raw.get("min_total_spent"), f"{field}.min_total_spent"),
            max_total_spent=optional_money(raw.get("max_total_spent"), f"{field}.max_total_spent"),
            category_affinity=affinity,
        )
        same_currency((segment.min_total_spent, segment.max_total_spent), field)
        return segment

    def to_doc(self) -> dict[str, Any] | None:
        if self.everyone:
            return None
        doc: dict[str, Any] = {}
        for name in (
            "first_order",
            "min_orders",
            "min_days_since_last_purchase",
            "max_days_since_last_purchase",
        ):
            if getattr(self, name) is not None:
                doc[name] = getattr(self, name)
        for name in ("min_total_spent", "max_total_spent"):
            money = getattr(self, name)
            if money is not None:
                doc[name] = money.to_doc()
        if self.category_affinity is not None:
            doc["category_affinity"] = {
                "category": category_text(self.category_affinity.category),
                "min_ratio": self.category_affinity.min_ratio,
            }
        return doc

    def unmet(self, profile: Profile | None, now: datetime, personalized: bool) -> str | None:
        """Why this shopper is not in the segment (shopper-readable), or None when they are."""
        if self.everyone:
            return None
        if profile is None or not personalized:
            return "this offer is for selected signed-in shoppers"
        return (
            self._orders_unmet(profile)
            or self._recency_unmet(profile, now)
            or self._spend_unmet(profile)
            or self._affinity_unmet(profile)
        )

    def _orders_unmet(self, profile: Profile) -> str | None:
        if self.first_order is True and profile.orders > 0:
            return "this offer is for a first order"
        if self.first_order is False and profile.orders == 0:
            return "this offer is for returning customers"
        if self.min_orders is not None and profile.orders < self.min_orders:
            return f"this offer is for customers with at least {self.min_orders} orders"
        return None

    def _recency_unmet(self, profile: Profile, now: datetime) -> str | None:
        least, most = self.min_days_since_last_purchase, self.max_days_since_last_purchase
        if least is None and most is None:
            return None
        if profile.last_purchase_at is None:
            return "this offer is for returning customers"
        days = (now - profile.last_purchase_at).days
        if least is not None and days < least:
            return f"this offer is for customers who have not ordered for {least} days"
        if most is not None and days > most:
            return f"this offer is for customers who ordered in the last {most} days"
        return None

    def _spend_unmet(self, profile: Profile) -> str | None:
        spent = profile.total_spent
        low, high = self.min_total_spent, self.max_total_spent
        if low is not None and (spent is None or spent.currency != low.currency or spent < low):
            return f"this offer is for customers who spent {low.format()}"
        if high is not None and spent is not None and spent.currency == high.currency:
            return "this offer is for newer customers" if high < spent else None
        return None

    def _affinity_unmet(self, profile: Profile) -> str | None:
        condition = self.category_affinity
        if condition is None or affinity_met(profile, condition):
            return None
        return f"this offer is for fans of {category_text(condition.category)}"


def affinity_met(profile: Profile, condition: CategoryAffinity) -> bool:
    scores = dict(profile.category_affinities)
    if not scores:
        return False
    strongest = max(scores.values())
    score = scores.get(category_text(condition.category), 0.0)
    return strongest > 0 and score / strongest >= condition.min_ratio
