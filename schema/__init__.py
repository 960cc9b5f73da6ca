"""The strawberry GraphQL schema and its committed SDL (`schema/schema.graphql`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import strawberry
from graphql import GraphQLError, NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, ParserCache, SchemaExtension, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from schema.errors import MaskInternalErrors
from schema.root import Mutation, Query
from schema.scalars import SCALARS
from service.config import Settings

SDL_PATH = Path(__file__).with_name("schema.graphql")


class ShopfrontSchema(strawberry.Schema):
    """Logs only internal errors (with their traceback, via `MaskInternalErrors`); an error a
    client caused (bad input, a missing key) is the client's answer, not an incident."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        return None


def build_schema(
    settings: Settings | None = None, *, introspection: bool | None = None
) -> ShopfrontSchema:
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
    return ShopfrontSchema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALARS),
    )


def sdl() -> str:
    return build_schema(introspection=True).as_str() + "\n"
