"""Model versions: list them, and choose which one every instance serves (rollback)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from shopfront.recommend import models
from shopfront.schema.context import Context
from shopfront.schema.errors import ErrorCode, user_error
from shopfront.schema.pagination import (
    DEFAULT_FIRST,
    Connection,
    check_first,
    connection,
    decode_cursor,
    decode_time,
    encode_cursor,
)
from shopfront.schema.permissions import merchant_field, merchant_mutation
from shopfront.schema.scalars import JSON
from strawberry.types import Info


@strawberry.enum(description="Whether a model version is the one every instance serves.")
class ModelStatus(Enum):
    ACTIVE = models.ACTIVE
    INACTIVE = models.INACTIVE


@strawberry.type(description="One strategy's saved model inside a version.")
class ModelArtifact:
    strategy: str
    bytes: int
    fit_seconds: float


@strawberry.type(description="One training run's models: what it learned from and how it scored.")
class ModelVersion:
    version: str
    status: ModelStatus = strawberry.field(
        description="ACTIVE: served everywhere; INACTIVE: kept for rollback."
    )
    trained_at: datetime
    activated_at: datetime | None
    window_start: datetime
    window_end: datetime
    sizes: JSON = strawberry.field(description="Products, events and shoppers trained on.")
    metrics: JSON = strawberry.field(description="Offline metrics per strategy, if measured.")
    artifacts: list[ModelArtifact]
    loaded: bool = strawberry.field(description="Whether this instance is serving it now.")

    @classmethod
    def of(cls, v: models.ModelVersion, loaded: str | None) -> ModelVersion:
        return cls(
            version=v.version,
            status=ModelStatus(v.status),
            trained_at=v.trained_at,
            activated_at=v.activated_at,
            window_start=v.window_start,
            window_end=v.window_end,
            sizes=JSON(dict(v.sizes)),
            metrics=JSON({k: dict(m) for k, m in v.metrics.items()}),
            artifacts=[
                ModelArtifact(strategy=a.strategy, bytes=a.bytes, fit_seconds=a.fit_seconds)
                for a in v.artifacts
            ],
            loaded=v.version == loaded,
        )


def _registry(info: Info[Context, Any]) -> models.ModelRegistry | None:
    return info.context.runtime.models


def _loaded(info: Info[Context, Any]) -> str | None:
    registry = _registry(info)
    return registry.loaded.version if registry and registry.loaded else None


@strawberry.type
class ModelsQuery:
    @merchant_field(description="Model versions, newest first.")
    async def models(
        self, info: Info[Context, Any], first: int = DEFAULT_FIRST, after: str | None = None
    ) -> Connection[ModelVersion]:
        check_first(first, info.context.runtime.settings.max_page_size)
        last = None
        if after is not None:
            trained, version = decode_cursor("models", after, 2)
            last = (decode_time("models", trained), version)
        versions = await models.list_versions(info.context.runtime.store, first + 1, last)
        loaded = _loaded(info)
        return connection(
            versions,
            first,
            lambda v: encode_cursor("models", (v.trained_at.isoformat(), v.version)),
            lambda v: ModelVersion.of(v, loaded),
        )


@strawberry.input(description="The model version to serve.")
class ActivateModelInput:
    version: str


@strawberry.type
class ModelsMutation:
    @merchant_mutation(
        description="Serve this model version on every instance (within the poll interval); "
        "activating an older version rolls back."
    )
    async def activate_model(
        self, info: Info[Context, Any], input: ActivateModelInput
    ) -> ModelVersion:
        version = input.version
        try:
            activated = await models.activate(info.context.runtime.store, version)
        except models.ModelError as exc:
            raise user_error(str(exc), code=ErrorCode.NOT_FOUND) from None
        registry = _registry(info)
        if registry is not None:
            await registry.refresh()  # this instance at once; the others at their next poll
        return ModelVersion.of(activated, _loaded(info))
