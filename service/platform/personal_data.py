"""The one registry of collections that hold personal data: what each keeps, which field names
the shopper (and the session), how long it is kept and why.

Export and erasure (`shopfront.shoppers.privacy`), consent withdrawal, retention (the TTL
indexes `shopfront.platform.store.Store.ensure_indexes` creates from `retention_indexes`) and
``docs/privacy.md`` all read `PERSONAL_DATA`. A module that stores a shopper's or a session's
id in a new collection adds an entry here; ``tests/shoppers/test_personal_data_registry.py``
exercises every feature and fails when it finds a shopper's id in a collection not listed.

Driver-free on purpose (index specifications are plain tuples), so any layer may read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from shopfront.platform.config import Settings

_DAY = 86_400


@dataclass(frozen=True)
class PersonalCollection:
    """One collection holding data about a shopper.

    ``user_field`` names the shopper; ``session_field`` (when set) a browsing session, so
    documents written before the shopper was known are found through the shopper's sessions.
    ``clock`` is the date field retention counts from and ``retention`` the `Settings`
    attribute giving the days; when ``clock_is_expiry`` the field already holds the expiry
    date (computed from the setting when the document is written). ``ttl_only`` restricts
    expiry to the documents matching it (a partial TTL index). ``withdrawn`` collections are
    deleted when the shopper withdraws personalization consent.
    """

    name: str
    user_field: str
    session_field: str | None
    clock: str
    retention: str
    why: str
    clock_is_expiry: bool = False
    ttl_only: Mapping[str, Any] | None = None
    withdrawn: bool = False

    def retention_days(self, settings: Settings) -> int:
        value = getattr(settings, self.retention)
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"setting {self.retention} is not a whole number of days")
        return value

    def ttl_seconds(self, settings: Settings) -> int:
        """``expireAfterSeconds`` of the collection's TTL index."""
        return 0 if self.clock_is_expiry else self.retention_days(settings) * _DAY

    @property
    def ttl_index_name(self) -> str:
        return f"{self.clock}_ttl"

    def env_name(self) -> str:
        return "SHOPFRONT_" + self.retention.upper()


PERSONAL_DATA: tuple[PersonalCollection, ...] = (
    PersonalCollection(
        "events",
        "user_id",
        "session_id",
        clock="timestamp",
        retention="event_retention_days",
        why="behaviour events: the profile, training and reports are computed from them",
        withdrawn=True,
    ),
    PersonalCollection(
        "profiles",
        "user_id",
        None,
        clock="updated_at",
        retention="profile_retention_days",
        why="affinities, recent views, cart and preferences: what personalization reads",
    ),
    PersonalCollection(
        "session_links",
        "user_id",
        "_id",
        clock="linked_at",
        retention="session_link_retention_days",
        why="which shopper an identified session belongs to, so its events are theirs",
        withdrawn=True,
    ),
    PersonalCollection(
        "consents",
        "_id",
        None,
        clock="updated_at",
        retention="consent_retention_days",
        why="the shopper's personalization answer, which every write path honours",
    ),
    PersonalCollection(
        "recommendations",
        "user_id",
        "session_id",
        clock="expire_at",
        retention="recommendation_ttl_days",
        why="what each served slot showed, so later events can be attributed to it",
        clock_is_expiry=True,
        withdrawn=True,
    ),
    PersonalCollection(
        "assignments",
        "user_id",
        "session_id",
        clock="recorded_at",
        retention="assignment_retention_days",
        why="the experiment variant a shopper or session was first exposed to",
    ),
    PersonalCollection(
        "exposures",
        "user_id",
        "session_id",
        clock="at",
        retention="exposure_retention_days",
        why="sampled impressions of experiment variants, for experiment reports",
        withdrawn=True,
    ),
    PersonalCollection(
        "attributions",
        "user_id",
        "session_id",
        clock="timestamp",
        retention="attribution_retention_days",
        why="clicks, carts and purchases credited to a slot and variant, for reports",
        withdrawn=True,
    ),
    PersonalCollection(
        "coupon_redemptions",
        "user_id",
        None,
        clock="redeemed_at",
        retention="redemption_retention_days",
        why="which coupon an order used: checkout accounting and releases",
    ),
    PersonalCollection(
        "coupon_usage",
        "user_id",
        None,
        clock="updated_at",
        retention="redemption_retention_days",
        why="how often the shopper used each campaign: per-shopper limits",
    ),
    PersonalCollection(
        "coupon_codes",
        "user_id",
        None,
        clock="created_at",
        retention="personal_code_retention_days",
        why="personal codes minted for the shopper (shared and generated codes name no one)",
        ttl_only=MappingProxyType({"user_id": {"$exists": True}}),
    ),
    PersonalCollection(
        "coupon_idempotency",
        "user_id",
        None,
        clock="expires_at",
        retention="idempotency_ttl_days",
        why="the first result of a redeemCoupon call, replayed to a retry of it",
        clock_is_expiry=True,
    ),
)

BY_NAME: Mapping[str, PersonalCollection] = MappingProxyType({c.name: c for c in PERSONAL_DATA})

# Collection -> field holding the shopper's id (the form most callers need).
USER_DATA: Mapping[str, str] = MappingProxyType({c.name: c.user_field for c in PERSONAL_DATA})

# Collections written about shoppers that hold no shopper or session id, and why they are
# not personal data (the registry test accepts exactly these besides `PERSONAL_DATA`).
NOT_PERSONAL: Mapping[str, str] = MappingProxyType(
    {
        "tombstones": "salted hashes of erased ids, so late writes for them are refused",
        "product_stats": "anonymous counts per product and day",
        "ingest_batches": "completion markers of event batches (no ids of shoppers)",
    }
)


@dataclass(frozen=True)
class RetentionIndex:
    """A TTL index spec, driver-free: `shopfront.platform.store` turns it into an IndexModel."""

    collection: str
    name: str
    key: str
    expire_after_seconds: int
    partial: Mapping[str, Any] | None = field(default=None)


def retention_indexes(settings: Settings) -> list[RetentionIndex]:
    """The TTL index of every `PERSONAL_DATA` collection, with lifetimes from ``settings``."""
    return [
        RetentionIndex(
            c.name,
            c.ttl_index_name,
            c.clock,
            c.ttl_seconds(settings),
            dict(c.ttl_only) if c.ttl_only is not None else None,
        )
        for c in PERSONAL_DATA
    ]
