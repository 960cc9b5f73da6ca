"""Privacy requests: consent (storefront key), data export and erasure (merchant key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from shopfront.schema.context import Context
from shopfront.schema.errors import ErrorCode, user_error
from shopfront.schema.permissions import merchant_field, merchant_mutation, storefront_mutation
from shopfront.schema.profiles import checked_user_id, shopper_of
from shopfront.schema.scalars import JSON
from shopfront.shoppers import privacy
from strawberry.types import Info


@strawberry.type
class CollectionCount:
    collection: str = strawberry.field(
        description='A collection name, or "plugin:<name>" for state a plugin deleted.'
    )
    count: int


def _counts(deleted: dict[str, int]) -> list[CollectionCount]:
    return [CollectionCount(collection=k, count=v) for k, v in sorted(deleted.items())]


@strawberry.type
class ConsentResult:
    user_id: strawberry.ID
    personalization: bool
    updated_at: datetime
    deleted: list[CollectionCount] = strawberry.field(
        description="Behaviour data deleted because consent was withdrawn (empty otherwise)."
    )


@strawberry.type
class ErasureResult:
    user_id: strawberry.ID
    deleted: list[CollectionCount] = strawberry.field(description="Documents deleted, per place.")
    total: int
    already_erased: bool = strawberry.field(description="The shopper had been erased before.")
    complete: bool = strawberry.field(
        description="False when a plugin failed to forget the shopper: repeat the request."
    )
    failures: list[str] = strawberry.field(description="The plugins that failed.")


@strawberry.input(description="A shopper's personalization consent.")
class SetConsentInput:
    personalization: bool
    user_id: strawberry.ID | None = None  # taken from the shopper token when left out


@strawberry.input(description="The shopper to erase.")
class EraseUserInput:
    user_id: strawberry.ID


@strawberry.type
class PrivacyQuery:
    @merchant_field(
        description="Everything Shopfront holds about a shopper, as one JSON document (the "
        "answer to a data-subject access request)."
    )
    async def export_user_data(self, info: Info[Context, Any], user_id: strawberry.ID) -> JSON:
        runtime = info.context.runtime
        data = await privacy.export_user_data(
            runtime.store,
            checked_user_id(user_id),
            exporters=runtime.privacy_hooks.exporters,
        )
        return JSON(data)


@strawberry.type
class PrivacyMutation:
    @storefront_mutation(
        description="Record the shopper's personalization consent. Without it the shopper gets "
        "only non-personalized results and their events are kept only as anonymous counts; "
        "withdrawing it deletes their behaviour data. With a storefront key it needs the "
        "shopper's X-Shopper-Token (userId may be left out)."
    )
    async def set_consent(self, info: Info[Context, Any], input: SetConsentInput) -> ConsentResult:
        user_id, personalization = input.user_id, input.personalization
        uid = checked_user_id(shopper_of(info, user_id))
        try:
            state = await privacy.set_consent(info.context.runtime.store, uid, personalization)
        except privacy.UserErased as exc:
            raise user_error(str(exc), code=ErrorCode.USER_ERASED) from None
        return ConsentResult(
            user_id=strawberry.ID(state.user_id),
            personalization=state.personalization,
            updated_at=state.updated_at,
            deleted=_counts(dict(state.deleted)),
        )

    @merchant_mutation(
        description="Erase a shopper everywhere (profile, events, preferences, links, plugin "
        "state, ...); later events for the id are refused. Safe to repeat."
    )
    async def erase_user(self, info: Info[Context, Any], input: EraseUserInput) -> ErasureResult:
        user_id = input.user_id
        runtime = info.context.runtime
        report = await privacy.erase_user(
            runtime.store,
            checked_user_id(user_id),
            erasers=runtime.privacy_hooks.erasers,
        )
        erased = runtime.erased
        if erased is not None:  # this instance refuses writes for them from now on
            erased.add([report.user_id, *report.sessions])
            erased.sweep_later(report.user_id, report.sessions)
        return ErasureResult(
            user_id=strawberry.ID(report.user_id),
            deleted=_counts(dict(report.deleted)),
            total=report.total,
            already_erased=report.already_erased,
            complete=report.complete,
            failures=list(report.failures),
        )
