"""Words the whole service shares: the behaviour event types.

One list, read by settings (event weights), ingestion, training columns, the demo and the
GraphQL enum, so a new event type is added in exactly one place.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    """A behaviour event's type, as stored (GraphQL names them in upper case)."""

    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    PURCHASE = "purchase"
    SEARCH = "search"
    IMPRESSION = "impression"
    RATING = "rating"
    REVIEW = "review"
    NOT_INTERESTED = "not_interested"


EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)
