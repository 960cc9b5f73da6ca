"""The root Query and Mutation, merged from one part per domain.

Each domain module (catalog, events, storefront, ...) owns its own `...Query` / `...Mutation`
class; adding a domain means adding it to the lists below.
"""

from __future__ import annotations

from strawberry.tools import merge_types

from schema.catalog import CatalogMutation, CatalogQuery
from schema.models import ModelsMutation, ModelsQuery

QUERY_PARTS: tuple[type, ...] = (CatalogQuery, ModelsQuery)
MUTATION_PARTS: tuple[type, ...] = (CatalogMutation, ModelsMutation)

Query = merge_types("Query", QUERY_PARTS)
Mutation = merge_types("Mutation", MUTATION_PARTS)
