"""The shopper's profile as the storefront and plugins read it: a frozen snapshot, loaded once
per request, with time-decayed affinities already evaluated at the request's time.

`shopfront.shoppers.profiles` owns how profiles are stored and updated; this module is the read
model
every strategy codes against, so it changes only by adding fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from shopfront.platform.money import Money


@dataclass(frozen=True)
class Purchase:
    """How often the shopper bought one product, and when first and last."""

    count: int
    last_at: datetime
    first_at: datetime | None = None  # None in profiles stored before it was recorded

    @property
    def interval_days(self) -> float | None:
        """The shopper's own average days between purchases of it (None below two)."""
        if self.count < 2 or self.first_at is None:
            return None
        return max((self.last_at - self.first_at).total_seconds(), 0.0) / 86_400 / (self.count - 1)


@dataclass(frozen=True)
class StatedPreferences:
    """What the shopper told us (qualitative data), as opposed to what they did."""

    categories: tuple[str, ...] = ()  # category paths joined with " > "
    brands: tuple[str, ...] = ()
    sizes: tuple[str, ...] = ()
    price_min: Money | None = None
    price_max: Money | None = None
    answers: Mapping[str, str] = field(default_factory=dict)  # survey key -> answer


@dataclass(frozen=True)
class Profile:
    """Everything Shopfront knows about one shopper, evaluated at ``as_of``.

    Affinities are ranked, strongest first, as ``(key, score)``; category keys are paths joined
    with " > " (every prefix of a product's path counts, so "Shoes" and "Shoes > Running").
    Scores are decayed to ``as_of``; only their order and ratios are meaningful.
    """

    user_id: str
    as_of: datetime
    consent_personalization: bool = True
    category_affinities: tuple[tuple[str, float], ...] = ()
    brand_affinities: tuple[tuple[str, float], ...] = ()
    tag_affinities: tuple[tuple[str, float], ...] = ()
    recently_viewed: tuple[str, ...] = ()  # product ids, newest first
    purchases: Mapping[str, Purchase] = field(default_factory=dict)
    not_interested: frozenset[str] = frozenset()
    cart: tuple[tuple[str, int], ...] = ()  # (product id, quantity) as last seen
    cart_updated_at: datetime | None = None
    ratings: Mapping[str, int] = field(default_factory=dict)  # product id -> 1..5
    typical_price: Money | None = None  # typical unit price paid (the price band)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    sessions: int = 0
    orders: int = 0
    total_spent: Money | None = None
    last_purchase_at: datetime | None = None
    preferences: StatedPreferences = field(default_factory=StatedPreferences)

    @property
    def personalized(self) -> bool:
        """False when the shopper withheld consent: use non-personalized strategies only."""
        return self.consent_personalization

    @property
    def is_new(self) -> bool:
        return self.orders == 0 and not self.recently_viewed and not self.purchases
