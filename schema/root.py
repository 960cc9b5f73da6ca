"""The root Query and Mutation, merged from one part per domain.

Each domain module (catalog, events, storefront, ...) owns its own `...Query` / `...Mutation`
class; adding a domain means adding it to the lists below.
"""

from __future__ import annotations

from strawberry.tools import merge_types

from schema.catalog import CatalogMutation, CatalogQuery
from schema.coupons import CouponsMutation, CouponsQuery
from schema.events import EventsMutation
from schema.experiments import ExperimentsMutation, ExperimentsQuery
from schema.models import ModelsMutation, ModelsQuery
from schema.plugins import PluginsQuery
from schema.privacy import PrivacyMutation, PrivacyQuery
from schema.profiles import ProfilesMutation, ProfilesQuery
from schema.promotions import PromotionsMutation, PromotionsQuery
from schema.storefront import StorefrontQuery

QUERY_PARTS: tuple[type, ...] = (
    CatalogQuery,
    StorefrontQuery,
    ProfilesQuery,
    PrivacyQuery,
    PromotionsQuery,
    CouponsQuery,
    PluginsQuery,
    ExperimentsQuery,
    ModelsQuery,
)
MUTATION_PARTS: tuple[type, ...] = (
    CatalogMutation,
    EventsMutation,
    ProfilesMutation,
    PrivacyMutation,
    PromotionsMutation,
    CouponsMutation,
    ExperimentsMutation,
    ModelsMutation,
)

Query = merge_types("Query", QUERY_PARTS)
Mutation = merge_types("Mutation", MUTATION_PARTS)
