"""Shopfront's hook specifications (pluggy project ``shopfront``).

Hooks register and decide; the async work lives on the strategy objects they return (see
`shopfront.recommend.contract`). pluggy is synchronous and stops at the first exception, so the
plugin
host never calls a strategy through a bare hook loop: it calls each one itself, under a
deadline, with a circuit breaker.

Kinds of hook:

- startup hooks (all results collected): ``register_recommenders``,
  ``register_coupon_strategies``, ``register_promotions``, ``startup``;
- policy hooks (``firstresult``: the first non-None answer wins; the built-in default is
  ``trylast`` so a merchant's implementation runs first): ``blend_candidates``,
  ``choose_coupon_offers``, ``promotion_stacking``;
- event hooks (all called): ``on_event``, ``on_user_erased``, ``export_user_data``.

A hook implementation that may return an awaitable says so below; the host awaits it under a
deadline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

import pluggy
from shopfront.catalog.products import Product
from shopfront.offers.contract import (
    CouponOffer,
    CouponStrategySpec,
    PricedCart,
    PromotionSpec,
    PromotionTerms,
    StackingPlan,
)
from shopfront.recommend.contract import Candidate, RecommenderSpec, Slot
from shopfront.shoppers.context import RequestContext

PROJECT = "shopfront"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- startup -------------------------------------------------------------------------------


@hookspec
def register_recommenders() -> Sequence[RecommenderSpec]:
    """Recommenders this plugin provides.

    Returns: a sequence of `RecommenderSpec` (unique name, factory, default config,
    description). All results are collected. Since 0.1.
    """
    raise NotImplementedError


@hookspec
def register_coupon_strategies() -> Sequence[CouponStrategySpec]:
    """Coupon strategies this plugin provides.

    Returns: a sequence of `CouponStrategySpec`. All results are collected. Since 0.1.
    """
    raise NotImplementedError


@hookspec
def register_promotions() -> Sequence[PromotionSpec]:
    """Cart promotions this plugin provides.

    Returns: a sequence of `PromotionSpec`. All results are collected. Since 0.1.
    """
    raise NotImplementedError


@hookspec
def startup(config: Mapping[str, Any]) -> Awaitable[None] | None:
    """Called once when the service starts, after strategies are built.

    Receives: this plugin's section of the configuration file (may be empty).
    Returns: None, or an awaitable the host awaits under the startup deadline. Since 0.1.
    """
    raise NotImplementedError


# -- policy (first result wins) ------------------------------------------------------------


@hookspec(firstresult=True)
def blend_candidates(
    ctx: RequestContext,
    slot: Slot,
    candidates: Mapping[str, Sequence[Candidate]],
    products: Mapping[str, Product],
) -> Sequence[Candidate] | None:
    """Blend and rank the candidates of one slot.

    Receives: the request, the slot, each strategy's candidates by strategy name (failed or
    late strategies are absent), and the candidates' products. Returns: the final ordered
    items (at most ``slot.limit``), or None to defer to the next implementation. First
    non-None result wins; the built-in blend is ``trylast``. Since 0.1.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def choose_coupon_offers(
    ctx: RequestContext, offers: Sequence[CouponOffer]
) -> Sequence[CouponOffer] | None:
    """Choose which coupon offers to show, in order.

    Receives: the request and every offer the coupon strategies made. Returns: the offers to
    show, or None to defer. First non-None result wins; built-in default ``trylast``.
    Since 0.1.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def promotion_stacking(
    ctx: RequestContext, cart: PricedCart, promotions: Sequence[PromotionTerms]
) -> StackingPlan | None:
    """Decide how promotions stack: which sequences of promotions to price.

    Receives: the request, the undiscounted cart, and the active promotions' terms in
    priority order. Returns: a `StackingPlan` (alternatives; the engine keeps the one best for
    the shopper), or None to defer. First non-None result wins; built-in default ``trylast``.
    Since 0.1.
    """
    raise NotImplementedError


# -- events --------------------------------------------------------------------------------


@hookspec
def on_event(event: Mapping[str, Any]) -> Awaitable[None] | None:
    """Called for each accepted behaviour event, after it is stored.

    Receives: the stored event document. Returns: None or an awaitable (awaited under a
    deadline; failures are logged, never fail ingestion). All implementations are called.
    Since 0.1.
    """
    raise NotImplementedError


@hookspec
def on_user_erased(user_id: str, session_ids: Sequence[str]) -> Awaitable[int] | int | None:
    """Forget a shopper: delete any state this plugin keeps about ``user_id`` and about the
    shopper's browsing sessions ``session_ids`` (an implementation may leave that argument
    out).

    Returns: the number of records deleted (or an awaitable of it), or None. All
    implementations are called; a failure is reported in the erase result. Since 0.1
    (``session_ids`` since 0.2).
    """
    raise NotImplementedError


@hookspec
def export_user_data(
    user_id: str, session_ids: Sequence[str]
) -> Awaitable[Mapping[str, Any]] | Mapping[str, Any] | None:
    """Tell a shopper what this plugin keeps about them (a data-subject access request).

    Returns: a JSON-like mapping of what it holds about ``user_id`` and the shopper's sessions
    ``session_ids`` (an implementation may leave that argument out), or an awaitable of it,
    or None when it holds nothing. It appears under ``plugins.<plugin name>`` in
    ``exportUserData``. All implementations are called; a failure or a non-mapping answer is
    named in ``plugin_failures`` (the export is incomplete). Since 0.2.
    """
    raise NotImplementedError


HOOK_NAMES: tuple[str, ...] = (
    "register_recommenders",
    "register_coupon_strategies",
    "register_promotions",
    "startup",
    "blend_candidates",
    "choose_coupon_offers",
    "promotion_stacking",
    "on_event",
    "on_user_erased",
    "export_user_data",
)
