"""The strawberry GraphQL schema and its committed SDL (`schema/schema.graphql`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import strawberry
from graphql import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, ParserCache, SchemaExtension, ValidationCache
from strawberry.schema.config import StrawberryConfig

from schema.errors import MaskInternalErrors
from schema.root import Mutation, Query
from schema.scalars import SCALARS
from service.config import Settings

SDL_PATH = Path(__file__).with_name("schema.graphql")


def build_schema(
    settings: Settings | None = None, *, introspection: bool | None = None
) -> strawberry.Schema:
    settings = settings or Settings()
    allow_introspection = settings.introspection_enabled if introspection is None else introspection
    mask = settings.environment == "production"
    # Factories, so each request gets fresh extension instances; the caches live in
    # module-level LRU functions inside strawberry, so they are shared across requests.
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: ParserCache(maxsize=1024),
        lambda: ValidationCache(maxsize=1024),
        lambda: MaskInternalErrors(mask=mask),
    ]
    if not allow_introspection:
        extensions.append(lambda: AddValidationRules([NoSchemaIntrospectionCustomRule]))
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALARS),
    )


def sdl() -> str:
    return build_schema(introspection=True).as_str() + "\n"
