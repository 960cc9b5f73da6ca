"""The root Query and Mutation, merged from one part per domain.

Each domain module (catalog, events, storefront, ...) owns its own `...Query` / `...Mutation`
class; adding a domain means adding it to the lists below.
"""

from __future__ import annotations

from shopfront.schema.catalog import CatalogMutation, CatalogQuery
from shopfront.schema.coupons import CouponsMutation, CouponsQuery
from shopfront.schema.events import EventsMutation
from shopfront.schema.experiments import ExperimentsMutation, ExperimentsQuery
from shopfront.schema.identity import IdentityMutation
from shopfront.schema.models import ModelsMutation, ModelsQuery
from shopfront.schema.plugins import PluginsQuery
from shopfront.schema.privacy import PrivacyMutation, PrivacyQuery
from shopfront.schema.profiles import ProfilesMutation, ProfilesQuery
from shopfront.schema.promotions import PromotionsMutation, PromotionsQuery
from shopfront.schema.storefront import StorefrontQuery
from strawberry.tools import merge_types

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
    IdentityMutation,
)

Query = merge_types("Query", QUERY_PARTS)
Mutation = merge_types("Mutation", MUTATION_PARTS)
