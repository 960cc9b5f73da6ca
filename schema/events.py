"""Behaviour events in (storefront key): `trackEvents` and `identify`."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any

import strawberry
from shopfront.experiments import attribution
from shopfront.platform import admission
from shopfront.platform.metrics import metrics_of
from shopfront.platform.vocabulary import EventType as EventTypeValue
from shopfront.runtime import Runtime
from shopfront.schema.context import Context
from shopfront.schema.errors import user_error
from shopfront.schema.permissions import storefront_mutation
from shopfront.schema.types import MoneyInput, PageType
from shopfront.shoppers import events as events_service
from shopfront.shoppers import privacy
from strawberry.types import Info


async def _attribute(
    runtime: Runtime,
    raws: list[dict[str, Any]],
    results: list[events_service.EventResult],
) -> None:
    """Credit accepted clicks, add-to-carts and purchases to the recommendation (slot,
    strategy, variant) that produced them; shoppers without consent are never attributed."""
    accepted = [
        raws[r.index]
        for r in results
        if r.status is events_service.EventStatus.ACCEPTED
        and r.personal  # ingestion already kept only a receipt for shoppers without consent
        and raws[r.index].get("type") in ("click", "add_to_cart", "purchase")
    ]
    if not accepted:
        return
    await attribution.attribute_events(
        runtime.store,
        accepted,
        window_hours=runtime.settings.attribution_window_hours,
        now=datetime.now(UTC),
    )


# The one list of event types, exposed as the GraphQL enum ``EventType``.
EventType = EventTypeValue
strawberry.enum(EventType, name="EventType", description="What the shopper did.")


@strawberry.input(
    description="One behaviour event. Give a userId (the merchant's opaque shopper id, never an "
    "e-mail address) or a sessionId, or both, and the fields that fit the type: productId for "
    "product events; price (unit price paid) and orderId for PURCHASE; query for SEARCH; "
    "rating 1-5 for RATING; review text for REVIEW (rating optional)."
)
class EventInput:
    event_id: strawberry.ID = strawberry.field(
        description="The client's unique id for this event: sending it again is a no-op."
    )
    type: EventType
    timestamp: datetime = strawberry.field(
        description="When it happened, with a UTC offset; at most 5 minutes in the future and "
        "not older than the retention window."
    )
    user_id: strawberry.ID | None = None
    session_id: strawberry.ID | None = None
    product_id: strawberry.ID | None = None
    quantity: int | None = strawberry.field(
        default=None, description="Cart events and purchases; default 1."
    )
    price: MoneyInput | None = strawberry.field(default=None, description="Unit price paid.")
    order_id: strawberry.ID | None = None
    query: str | None = None
    rating: int | None = None
    review: str | None = None
    recommendation_id: strawberry.ID | None = strawberry.field(
        default=None, description="The recommendation the shopper acted on, if any."
    )
    position: int | None = strawberry.field(
        default=None,
        description="The item's position in that recommendation, 1-based as in the "
        "storefront answer (`items.position`).",
    )
    page_type: PageType | None = None

    def to_raw(self) -> dict[str, Any]:
        """The event as `shopfront.shoppers.events.ingest_events` takes it."""
        return {
            "event_id": str(self.event_id),
            "type": self.type.value,
            "timestamp": self.timestamp,
            "user_id": _opt(self.user_id),
            "session_id": _opt(self.session_id),
            "product_id": _opt(self.product_id),
            "quantity": self.quantity,
            "price": (
                {"amount": self.price.amount, "currency": self.price.currency}
                if self.price
                else None
            ),
            "order_id": _opt(self.order_id),
            "query": self.query,
            "rating": self.rating,
            "review": self.review,
            "recommendation_id": _opt(self.recommendation_id),
            "position": self.position,
            "page_type": self.page_type.value.lower() if self.page_type else None,
        }


def _opt(value: strawberry.ID | None) -> str | None:
    return None if value is None else str(value)


@strawberry.enum
class EventStatus(Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@strawberry.type(description="What happened to one event of a trackEvents call.")
class EventResult:
    index: int
    event_id: strawberry.ID | None
    status: EventStatus
    reason: str | None


@strawberry.type
class TrackEventsResult:
    accepted: int
    duplicates: int
    rejected: int
    results: list[EventResult] = strawberry.field(description="One per event, in order.")


@strawberry.type
class IdentifyResult:
    session_id: strawberry.ID
    user_id: strawberry.ID
    linked: bool = strawberry.field(
        description="False when the shopper withheld personalization consent: the session "
        "then stays anonymous."
    )
    merged_events: int = strawberry.field(
        description="Anonymous events of the session attributed to the shopper by this call."
    )


@strawberry.type
class EventsMutation:
    @storefront_mutation(
        description="Record behaviour events (up to the per-call limit, 500 by default). Each "
        "event is accepted, a duplicate (already received), or rejected with the reason; one "
        "bad event never costs the others."
    )
    async def track_events(
        self, info: Info[Context, Any], events: list[EventInput]
    ) -> TrackEventsResult:
        runtime = info.context.runtime
        limit = runtime.settings.max_events_per_call
        if len(events) > limit:
            raise user_error(f"events: {len(events)} events; at most {limit} per call")
        raws = [e.to_raw() for e in events]
        # Admission control: beyond capacity the caller gets 503 OVERLOADED with Retry-After,
        # never a hang; everything acknowledged below as accepted is stored.
        async with admission.ingestion_gate(runtime).admit(len(raws)):
            results = await events_service.ingest_events(
                runtime.store,
                runtime.settings,
                raws,
                listeners=runtime.event_hooks.listeners,
            )
            await _attribute(runtime, raws, results)
        metrics = metrics_of(runtime)
        if metrics is not None:
            for status in ("accepted", "duplicate", "rejected"):
                n = sum(r.status.value == status for r in results)
                if n:
                    metrics.ingestion_events.labels(status).inc(n)
        out = [
            EventResult(
                index=r.index,
                event_id=strawberry.ID(r.event_id) if r.event_id is not None else None,
                status=EventStatus(r.status.value),
                reason=r.reason,
            )
            for r in results
        ]
        return TrackEventsResult(
            accepted=sum(r.status is EventStatus.ACCEPTED for r in out),
            duplicates=sum(r.status is EventStatus.DUPLICATE for r in out),
            rejected=sum(r.status is EventStatus.REJECTED for r in out),
            results=out,
        )

    @storefront_mutation(
        description="Join an anonymous session to a shopper: its earlier events are merged "
        "into the shopper's profile (once) and its later events belong to the shopper."
    )
    async def identify(
        self, info: Info[Context, Any], session_id: strawberry.ID, user_id: strawberry.ID
    ) -> IdentifyResult:
        runtime = info.context.runtime
        try:
            result = await events_service.identify(
                runtime.store, runtime.settings, str(session_id), str(user_id)
            )
        except privacy.UserErased as exc:
            raise user_error(str(exc), code="USER_ERASED") from None
        except events_service.IdentifyError as exc:
            raise user_error(str(exc)) from None
        if result.linked:
            from shopfront.experiments.assignment import inherit_assignments

            registry = runtime.experiments
            await inherit_assignments(
                runtime.store,
                result.session_id,
                result.user_id,
                now=datetime.now(UTC),
                registry=registry,
            )
        return IdentifyResult(
            session_id=strawberry.ID(result.session_id),
            user_id=strawberry.ID(result.user_id),
            linked=result.linked,
            merged_events=result.merged_events,
        )
