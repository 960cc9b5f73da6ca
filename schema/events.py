"""Behaviour events in (storefront key): `trackEvents` and `identify`."""

from __future__ import annotations

import dataclasses
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
from shopfront.schema.errors import ErrorCode, user_error
from shopfront.schema.permissions import (
    acting_shopper,
    identified_session,
    storefront_mutation,
)
from shopfront.schema.types import MoneyInput, PageType
from shopfront.shoppers import events as events_service
from shopfront.shoppers import privacy
from shopfront.shoppers.identity import session_id_problem
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
        and raws[r.index].get("confirmed") is not False  # revenue is the merchant's word
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


def _caller_events(
    info: Info[Context, Any], events: list[EventInput]
) -> tuple[list[dict[str, Any]], dict[int, events_service.EventResult]]:
    """The events as ingestion takes them, checked against the caller's credentials, and the
    ones refused one by one (a storefront key's guessable session id).

    With a storefront key an event's userId needs the shopper's token (and is taken from it
    when left out); its PURCHASE events are marked unconfirmed. Every event id is scoped to
    the key and the shopper (or session), so no caller can claim or squat another's ids.
    """
    ctx = info.context
    merchant = ctx.is_merchant
    key_id = ctx.principal.id if ctx.principal is not None else "-"
    raws: list[dict[str, Any]] = []
    refused: dict[int, events_service.EventResult] = {}
    for i, event in enumerate(events):
        raw = event.to_raw()
        raw["user_id"] = acting_shopper(info, raw["user_id"], what=f"events[{i}].userId")
        session = raw["session_id"]
        problem = None if merchant or session is None else session_id_problem(session)
        if problem is not None:
            refused[i] = events_service.EventResult(
                i,
                str(event.event_id),
                events_service.EventStatus.REJECTED,
                f"session_id: {problem}",
            )
        if raw["type"] == "purchase":
            raw["confirmed"] = merchant
        shopper = f"user:{raw['user_id']}" if raw["user_id"] else f"session:{session}"
        raw["scope"] = f"{key_id}\x00{shopper}"
        raws.append(raw)
    return raws, refused


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


@strawberry.input(description="A batch of behaviour events.")
class TrackEventsInput:
    events: list[EventInput]


@strawberry.input(description="The anonymous session and the shopper it belongs to.")
class IdentifyInput:
    # Both may be left out with a storefront key: the shopper token carries sub and sid.
    session_id: strawberry.ID | None = None
    user_id: strawberry.ID | None = None


@strawberry.type
class EventsMutation:
    @storefront_mutation(
        description="Record behaviour events (up to the per-call limit, 500 by default). Each "
        "event is accepted, a duplicate (already received), or rejected with the reason; one "
        "bad event never costs the others."
    )
    async def track_events(
        self, info: Info[Context, Any], input: TrackEventsInput
    ) -> TrackEventsResult:
        events = input.events
        runtime = info.context.runtime
        limit = runtime.settings.max_events_per_call
        if len(events) > limit:
            raise user_error(f"events: {len(events)} events; at most {limit} per call")
        raws, refused = _caller_events(info, events)
        admitted = [i for i in range(len(raws)) if i not in refused]
        # Admission control: beyond capacity the caller gets 503 OVERLOADED with Retry-After,
        # never a hang; everything acknowledged below as accepted is stored.
        async with admission.ingestion_gate(runtime).admit(len(admitted)):
            stored = await events_service.ingest_events(
                runtime.store,
                runtime.settings,
                [raws[i] for i in admitted],
                listeners=runtime.event_hooks.listeners,
            )
            results = sorted(
                [
                    *(dataclasses.replace(r, index=admitted[r.index]) for r in stored),
                    *refused.values(),
                ],
                key=lambda r: r.index,
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
        "into the shopper's profile (once) and its later events belong to the shopper. With a "
        "storefront key it needs the shopper's X-Shopper-Token carrying both sub and sid "
        "(sessionId and userId may then be left out)."
    )
    async def identify(self, info: Info[Context, Any], input: IdentifyInput) -> IdentifyResult:
        session_id, user_id = input.session_id, input.user_id
        runtime = info.context.runtime
        session, user = identified_session(
            info,
            str(user_id) if user_id is not None else None,
            str(session_id) if session_id is not None else None,
        )
        try:
            result = await events_service.identify(runtime.store, runtime.settings, session, user)
        except privacy.UserErased as exc:
            raise user_error(str(exc), code=ErrorCode.USER_ERASED) from None
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
