"""The root Query and Mutation, merged from one part per domain.

Each domain module (catalog, events, storefront, ...) owns its own `...Query` / `...Mutation`
class; adding a domain means adding it to the lists below.
"""

from __future__ import annotations

from strawberry.tools import merge_types

from schema.catalog import CatalogMutation, CatalogQuery
from schema.coupons import CouponsMutation, CouponsQuery
from schema.promotions import PromotionsMutation, PromotionsQuery

QUERY_PARTS: tuple[type, ...] = (CatalogQuery, PromotionsQuery, CouponsQuery)
MUTATION_PARTS: tuple[type, ...] = (CatalogMutation, PromotionsMutation, CouponsMutation)

Query = merge_types("Query", QUERY_PARTS)
Mutation = merge_types("Mutation", MUTATION_PARTS)
