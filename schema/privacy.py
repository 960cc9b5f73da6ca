"""Privacy requests: consent (storefront key), data export and erasure (merchant key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from shopfront.schema.context import Context
from shopfront.schema.errors import user_error
from shopfront.schema.permissions import merchant_field, merchant_mutation, storefront_mutation
from shopfront.schema.profiles import checked_user_id
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


@strawberry.type
class PrivacyQuery:
    @merchant_field(
        description="Everything Shopfront holds about a shopper, as one JSON document (the "
        "answer to a data-subject access request)."
    )
    async def export_user_data(self, info: Info[Context, Any], user_id: strawberry.ID) -> JSON:
        data = await privacy.export_user_data(info.context.runtime.store, checked_user_id(user_id))
        return JSON(data)


@strawberry.type
class PrivacyMutation:
    @storefront_mutation(
        description="Record the shopper's personalization consent. Without it the shopper gets "
        "only non-personalized results and their events are kept only as anonymous counts; "
        "withdrawing it deletes their behaviour data."
    )
    async def set_consent(
        self, info: Info[Context, Any], user_id: strawberry.ID, personalization: bool
    ) -> ConsentResult:
        try:
            state = await privacy.set_consent(
                info.context.runtime.store, checked_user_id(user_id), personalization
            )
        except privacy.UserErased as exc:
            raise user_error(str(exc), code="USER_ERASED") from None
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
    async def erase_user(self, info: Info[Context, Any], user_id: strawberry.ID) -> ErasureResult:
        runtime = info.context.runtime
        report = await privacy.erase_user(
            runtime.store,
            checked_user_id(user_id),
            erasers=runtime.privacy_hooks.erasers,
        )
        return ErasureResult(
            user_id=strawberry.ID(report.user_id),
            deleted=_counts(dict(report.deleted)),
            total=report.total,
            already_erased=report.already_erased,
            complete=report.complete,
            failures=list(report.failures),
        )
