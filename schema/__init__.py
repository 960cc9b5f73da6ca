"""The strawberry GraphQL schema and its committed SDL (`schema/schema.graphql`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError, NoSchemaIntrospectionCustomRule
from shopfront.platform.config import Settings
from shopfront.schema.errors import ErrorCode, MaskInternalErrors
from shopfront.schema.gate import RequestGate
from shopfront.schema.limits import Limits, RequestLimits, limits_rule
from shopfront.schema.observe import OperationObserver
from shopfront.schema.root import Mutation, Query
from shopfront.schema.scalars import SCALARS
from strawberry.extensions import AddValidationRules, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

SDL_PATH = Path(__file__).with_name("schema.graphql")


class ShopfrontSchema(strawberry.Schema):
    """strawberry's schema without its default error logging: strawberry logs every error
    with a traceback, client mistakes included; `MaskInternalErrors` logs the internal ones
    (with the request id) and clients' own errors are not the operator's problem."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


def build_schema(
    settings: Settings | None = None, *, introspection: bool | None = None
) -> strawberry.Schema:
    """The schema with Shopfront's request pipeline. Extension order matters: the observer
    first (it leaves last, seeing final errors), the gate last (it runs just before the
    resolvers)."""
    settings = settings or Settings()
    allow_introspection = settings.introspection_enabled if introspection is None else introspection
    mask = settings.environment == "production"
    limits = Limits.from_settings(settings)
    # Rule classes are made once per schema: the validation cache keys on them.
    rules: list[type[ASTValidationRule]] = [limits_rule(limits)]
    if not allow_introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    # Factories, so each request gets fresh extension instances; the parse and validation
    # caches are module-level (schema/limits.py), shared across requests.
    extensions: list[Callable[[], SchemaExtension]] = [
        OperationObserver,
        lambda: RequestLimits(limits),  # also the parse and validation caches
        lambda: AddValidationRules(rules),
        lambda: MaskInternalErrors(mask=mask),
        RequestGate,
    ]
    batching: Any = None
    if settings.max_operations_per_batch > 1:
        batching = {"max_operations": settings.max_operations_per_batch}
    return ShopfrontSchema(
        query=Query,
        mutation=Mutation,
        # Not reachable from a field: listed so the SDL documents the error codes.
        types=[ErrorCode],
        extensions=extensions,
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALARS, batching_config=batching),
    )


def sdl() -> str:
    return build_schema(introspection=True).as_str() + "\n"
