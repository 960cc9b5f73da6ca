"""The storefront answer: recommendation slots, coupon offers and the priced cart, composed
from the plugins for one request.

Per request (`Storefront.compose`): the input is validated; the shopper's profile (one read)
and the page's and cart's products (one batched catalog read) are loaded concurrently; a
frozen `RequestContext` is built once and shared by every strategy. Then, all at once: each
slot's recommenders, every coupon strategy, and the cart through the promotion chain. The
candidates' products are read in one more batch (the request's DataLoader caches what strategies
already asked for), each slot is blended by the ``blend_candidates`` policy, and the hard rules
that are safety rather than policy are enforced here: only known, active products; at most
``slot.limit`` items; positions 1..n. Each slot gets a ``recommendationId``; the served slots are
stored in the ``recommendations`` collection (batched across requests by `RecommendationLog`,
off the request path) so later events can be attributed.

A strategy that fails, is late, is missing or is switched off is left out and named in
``degraded``; the rest of the answer still arrives. Money fails closed: a promotion that fails
gives no discount.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shopfront.catalog.products import Product
from shopfront.catalog.snapshot import CatalogSnapshot
from shopfront.experiments.assignment import Assignment, ExperimentRegistry
from shopfront.experiments.definitions import ExperimentError
from shopfront.experiments.exposure import ExposureRecorder, ServedItem, ServedOffer, ServedSlot
from shopfront.experiments.overrides import StorefrontOverrides, apply_overrides
from shopfront.extend.config import ConfigFile
from shopfront.extend.host import PluginHost
from shopfront.extend.records import Degradation, HostedPromotion, StrategyKind
from shopfront.offers.contract import (
    CouponOffer,
    PricedCart,
    Promotion,
    PromotionOutcome,
    PromotionTerms,
    StackingPlan,
)
from shopfront.offers.pricing import (
    CartPricer,
    PricingError,
    PromotionRunner,
    base_cart,
)
from shopfront.platform.config import Settings
from shopfront.platform.logs import mark_degraded, shopper_ref
from shopfront.platform.money import Money
from shopfront.platform.store import DatabaseUnavailable, PyMongoError, Store
from shopfront.recommend.contract import Candidate, Slot, SlotFilter
from shopfront.recommend.tuning import Tuning
from shopfront.shoppers.context import PageType, RequestContext
from shopfront.shoppers.erased import ErasedIds
from shopfront.shoppers.profile_view import Profile
from shopfront.storefront.answer import SlotItem, SlotResult, StorefrontResult
from shopfront.storefront.cart_lines import check_lines, to_request_indices
from shopfront.storefront.nudges import RecommendedCompletions
from shopfront.storefront.request import (
    PRODUCT_NOT_FOUND,
    SlotsMode,
    StorefrontInputError,
    StorefrontRequest,
    validate_request,
)
from shopfront.storefront.served_log import RecommendationLog
from shopfront.storefront.slots import (
    SlotConfig,
    enforce_rules,
    humanize,
    is_personalized,
    merge_by_score,
    shipping_from_config,
    slots_from_config,
)
from shopfront.storefront.sources import ProfileSource, RequestCatalog, product_loader
from strawberry.dataloader import DataLoader

log = logging.getLogger(__name__)


# -- composition ---------------------------------------------------------------------------


FALLBACK_ENTRIES = 1024


def _fallback_key(req: StorefrontRequest) -> tuple[str, ...]:
    """Which earlier answer may stand in for this request: same page, product and category."""
    return (req.page.value, req.product_id or "", " > ".join(req.category_path or ()))


class Storefront:
    """Composes storefront answers; one per service, shared by all requests."""

    def __init__(
        self,
        host: PluginHost,
        store: Store,
        settings: Settings,
        profiles: ProfileSource,
        *,
        config: ConfigFile | None = None,
    ) -> None:
        self.host = host
        self.store = store
        self.settings = settings
        self.profiles = profiles
        cfg = config if config is not None else host.config
        self.slots = slots_from_config(cfg.slots, cfg.source)
        self.shipping = shipping_from_config(cfg.shipping, cfg.source)
        self.served = RecommendationLog(store)
        # The in-memory catalog; set by `start_components` (None: read the collection).
        self.catalog: CatalogSnapshot | None = None
        # The pricing engine (shopfront.offers.pricing); set by `start_components`.
        self.pricer: CartPricer | None = None
        # Set by the app once experiments are loaded (shopfront.experiments.definitions); None: no
        # experiments.
        self.experiments: ExperimentRegistry | None = None
        self.exposures: ExposureRecorder | None = None
        # Erased shoppers and sessions (set by `start_components`): served anonymously, and
        # nothing about the request is recorded.
        self.erased: ErasedIds | None = None
        self._background: set[asyncio.Task[Any]] = set()
        # Last good non-personalized slots per page, served while the database is down.
        self._fallback: OrderedDict[tuple[str, ...], tuple[SlotResult, ...]] = OrderedDict()
        # Set by the app to its health monitor's view; always up without one.
        self.database_up: Callable[[], bool] = lambda: True
        # What training chose for serving the loaded model version (the model registry's
        # `tuning`); configured slots are served through it.
        self.tuning: Callable[[], Tuning] = Tuning

    def resolve_slots(self, req: StorefrontRequest) -> list[Slot]:
        """The slots to fill: the page's, the request's, or both (`SlotsMode`)."""
        page_slots = self.slots[req.page]
        tuning = self.tuning()
        tuned: set[str] = set()  # slots served as configured: the tuning applies
        if req.slots is None:
            chosen = list(page_slots)
            tuned = {c.name for c in chosen}
        else:
            by_name = {s.name: s for page in self.slots.values() for s in page}
            by_name.update({s.name: s for s in page_slots})
            chosen = list(page_slots) if req.mode is SlotsMode.ADD else []
            tuned = {c.name for c in chosen}
            position = {c.name: n for n, c in enumerate(chosen)}
            for i, o in enumerate(req.slots):
                base = by_name.get(o.name)
                if base is None and o.strategy is None:
                    raise StorefrontInputError(
                        f"slots[{i}]: {o.name!r} is not a configured slot; give a strategy"
                    )
                if base is None:
                    base = SlotConfig(o.name, humanize(o.name), (o.strategy or "",))
                elif o.strategy is not None:
                    base = replace(base, strategies=(o.strategy,), weights={})
                    tuned.discard(o.name)  # its strategies are the request's now
                else:
                    tuned.add(o.name)
                if o.limit is not None:
                    base = replace(base, limit=o.limit)
                if base.name in position:  # ADD naming a page slot: change it where it stands
                    chosen[position[base.name]] = base
                else:
                    chosen.append(base)
        slots = [
            Slot(
                name=c.name,
                title=c.title,
                strategies=c.strategies,
                limit=c.limit,
                weights=c.weights,
                params=c.params,
                filters=SlotFilter(category_path=req.category_path if c.filter_category else None),
            )
            for c in chosen
        ]
        return [tuning.apply(s) if s.name in tuned else s for s in slots]

    async def _profile(
        self, user_id: str | None, now: datetime, degraded: list[Degradation]
    ) -> Profile | None:
        if user_id is None:
            return None
        try:
            return await self.profiles.load(user_id, now)
        except (PyMongoError, OSError, TimeoutError) as exc:
            # Serve the page without personalization rather than not at all.
            who = shopper_ref(user_id, self.settings.log_pii)
            log.warning("profile of %s unavailable: %s", who, exc)
            degraded.append(Degradation("profile", "unavailable"))
            return None

    async def compose(
        self,
        request: StorefrontRequest,
        *,
        request_id: str,
        now: datetime | None = None,
        loader: DataLoader[str, Product | None] | None = None,
    ) -> StorefrontResult:
        """The whole answer for ``request``; raises `StorefrontInputError` for bad input.

        When the database is known to be down, or the answer cannot be composed within
        ``storefront_budget_ms`` because the database is slow or failing, the last good
        non-personalized slots for the same page are served instead, flagged in ``degraded``
        (the cart is not priced: money paths fail closed). Without such an answer to fall
        back on, `DatabaseUnavailable` is raised.
        """
        req = validate_request(request, self.settings)
        key = _fallback_key(req)
        if not self.database_up():
            result = self._last_known_good(key, request_id, req, "database unavailable")
        else:
            try:
                async with asyncio.timeout(self.settings.storefront_budget_ms / 1000):
                    result = await self._compose(req, request_id=request_id, now=now, loader=loader)
            except (PyMongoError, OSError, TimeoutError) as exc:
                log.warning(
                    "storefront %s: database problem, serving last known good: %s", request_id, exc
                )
                result = self._last_known_good(key, request_id, req, "database unavailable")
            else:
                self._remember(key, result)
        self._mark(result)
        return result

    def _mark(self, result: StorefrontResult) -> None:
        """Name every part left out in the request's log line and the degraded-parts metric.

        A strategy a client asked for that is not loaded is labelled ``(unknown)`` in the
        metric (its name is still in the log line): request input must not grow the metric's
        label set.
        """
        configured = {name for page in self.slots.values() for s in page for name in s.strategies}
        for d in result.degraded:
            known = d.kind != "not loaded" or d.strategy in configured
            mark_degraded(
                d.strategy, d.reason, cause=d.kind, label=d.strategy if known else "(unknown)"
            )

    def _remember(self, key: tuple[str, ...], result: StorefrontResult) -> None:
        """Keep the answer's non-personalized slots for this page (bounded, LRU)."""
        keep = tuple(
            r
            for r in result.slots
            if r.items and not any(is_personalized(self.host, i.strategy) for i in r.items)
        )
        if not keep:
            return
        self._fallback[key] = keep
        self._fallback.move_to_end(key)
        while len(self._fallback) > FALLBACK_ENTRIES:
            self._fallback.popitem(last=False)

    def _last_known_good(
        self, key: tuple[str, ...], request_id: str, req: StorefrontRequest, why: str
    ) -> StorefrontResult:
        slots = self._fallback.get(key)
        if slots is None:
            raise DatabaseUnavailable(f"{why}, and no earlier answer for this page to fall back on")
        currency = req.currency or self.settings.default_currency
        return StorefrontResult(
            request_id=request_id,
            currency=currency,
            slots=tuple(
                replace(r, recommendation_id=uuid.uuid4().hex, degraded=True) for r in slots
            ),
            coupons=(),
            cart=None if req.cart_lines else base_cart((), {}, currency),
            cart_error="the cart cannot be priced while the database is unavailable"
            if req.cart_lines
            else None,
            products={},
            degraded=(Degradation("database", f"{why}: last known good results", why),),
        )

    async def _compose(
        self,
        req: StorefrontRequest,
        *,
        request_id: str,
        now: datetime | None = None,
        loader: DataLoader[str, Product | None] | None = None,
    ) -> StorefrontResult:
        slots = self.resolve_slots(req)
        currency = req.currency or self.settings.default_currency
        now = now or datetime.now(UTC)
        forgotten = self.erased is not None and self.erased.any_erased(req.user_id, req.session_id)
        if forgotten:
            req = replace(req, user_id=None, session_id=None)
        # Experiments: assignment is in-memory hashing, no database round trip.
        overrides = self._overrides(self._assign(req, now), slots)
        if overrides is not None:
            slots = list(overrides.slots)
        catalog = RequestCatalog(
            loader or product_loader(self.store, self.catalog), asyncio.get_running_loop()
        )
        degraded: list[Degradation] = []
        page_ids = [req.product_id] if req.product_id else []
        page_ids += [line.product_id for line in req.cart_lines]
        products, profile = await asyncio.gather(
            catalog.load_all([pid for pid in page_ids if pid]),
            self._profile(req.user_id, now, degraded),
        )
        if req.page is PageType.PRODUCT and req.product_id not in products:
            raise StorefrontInputError(
                f"productId: there is no product {req.product_id!r}", code=PRODUCT_NOT_FOUND
            )
        # Lines that cannot be priced are reported by index; strategies and promotions see
        # only the others.
        checked = check_lines(req.cart_lines, products, currency)
        cart_lines = checked.lines(req.cart_lines)
        recent = [req.product_id] if req.product_id else []
        recent += [line.product_id for line in reversed(cart_lines)]
        ctx = RequestContext(
            request_id=request_id,
            now=now,
            page=req.page,
            currency=currency,
            catalog=catalog,
            user_id=req.user_id,
            session_id=req.session_id,
            product_id=req.product_id,
            category_path=req.category_path,
            search_query=req.search_query,
            cart_lines=cart_lines,
            coupon_codes=req.coupon_codes,
            profile=profile,
            personalized=(profile.personalized if profile is not None else True)
            and (overrides is None or overrides.personalized),
            session_recent=tuple(dict.fromkeys(recent)),
            products=products,
            overrides=overrides.strategy_params if overrides is not None else {},
        )

        calls: list[tuple[int, str]] = []
        slot_degraded = [False] * len(slots)
        for i, slot in enumerate(slots):
            for name in dict.fromkeys(slot.strategies):
                problem = self.host.unavailable(name, StrategyKind.RECOMMENDER)
                if problem is not None:
                    degraded.append(problem)
                    slot_degraded[i] = True
                    continue
                if not ctx.personalized and is_personalized(self.host, name):
                    continue  # the shopper withheld consent: personalized strategies sit out
                calls.append((i, name))
        results, offers, (cart, cart_error) = await asyncio.gather(
            asyncio.gather(*(self.host.recommend(name, ctx, slots[i]) for i, name in calls)),
            self._offers(ctx, degraded, overrides),
            self._price(ctx, degraded, overrides),
        )
        if cart is not None:
            cart = to_request_indices(cart, checked.priceable)
        by_slot: list[dict[str, Sequence[Candidate]]] = [{} for _ in slots]
        for (i, name), result in zip(calls, results, strict=True):
            if result.problem is not None:
                degraded.append(result.problem)
                slot_degraded[i] = True
            elif result.value is not None:
                by_slot[i][name] = result.value

        wanted = {c.product_id for found in by_slot for cands in found.values() for c in cands}
        if cart is not None:
            wanted.update(pid for nudge in cart.nudges for pid in nudge.product_ids)
        more = await catalog.load_all(sorted(wanted - set(products))) if wanted else {}
        known = {**products, **more}

        slot_results: list[SlotResult] = []
        for slot, candidates, slot_failed in zip(slots, by_slot, slot_degraded, strict=True):
            items: tuple[SlotItem, ...] = ()
            if candidates:
                slot_products = {
                    c.product_id: known[c.product_id]
                    for cands in candidates.values()
                    for c in cands
                    if c.product_id in known
                }
                blended, problems = self.host.call_blend(ctx, slot, candidates, slot_products)
                degraded.extend(problems)
                ranked = blended if blended is not None else merge_by_score(slot, candidates)
                items = enforce_rules(ranked, slot_products, slot.limit)
            slot_results.append(
                SlotResult(slot.name, slot.title, uuid.uuid4().hex, items, slot_failed)
            )
        if not req.preview and not forgotten:  # a merchant looking is not a shopper seeing
            self._record(req, request_id, now, slots, slot_results, overrides)
            if overrides is not None:
                self._record_exposure(req, request_id, now, slot_results, offers, overrides)
        return StorefrontResult(
            request_id=request_id,
            currency=currency,
            slots=tuple(slot_results),
            coupons=offers,
            cart=cart,
            cart_error=cart_error,
            cart_line_errors=checked.errors,
            products=known,
            degraded=tuple(dict.fromkeys(degraded)),
            experiments=tuple(
                (a.experiment_name, a.variant)
                for a in (overrides.assignments if overrides is not None else ())
            ),
        )

    def _assign(self, req: StorefrontRequest, now: datetime) -> list[Assignment]:
        shopper = req.user_id or req.session_id
        if not req.variants:
            return self.experiments.assign(shopper, now) if self.experiments else []
        if self.experiments is None:
            raise StorefrontInputError("preview.variants: no experiment is running")
        try:
            return self.experiments.assign_chosen(shopper, now, dict(req.variants))
        except ExperimentError as exc:
            raise StorefrontInputError(f"preview.variants: {exc}") from None

    def _overrides(
        self, assignments: Sequence[Assignment], slots: Sequence[Slot]
    ) -> StorefrontOverrides | None:
        """The shopper's experiment variants applied to ``slots``, coupon strategies and
        promotions; None outside every experiment."""
        if not assignments:
            return None
        return apply_overrides(
            slots,
            [s.name for s in self.host.coupon_strategies()],
            [p.terms.name for p in self.host.promotions()],
            assignments,
        )

    async def price_order(self, ctx: RequestContext) -> PricedCart:
        """Price ``ctx``'s cart exactly as `compose` prices the storefront's cart for the same
        shopper: stored and plugin promotions, the ``promotion_stacking`` hook, the configured
        shipping fees and the shopper's experiment overrides. ``validateCoupons`` and
        ``redeemCoupon`` price through here, so the discount charged is the one shown.
        Raises `PricingError` for a cart that cannot be priced."""
        shopper = ctx.user_id or ctx.session_id
        assigned = self.experiments.assign(shopper, ctx.now) if self.experiments else []
        overrides = self._overrides(assigned, ())
        if overrides is not None:
            ctx = replace(
                ctx,
                personalized=ctx.personalized and overrides.personalized,
                overrides=overrides.strategy_params,
            )
        cart, error = await self._price(ctx, [], overrides)
        if cart is None:
            raise PricingError(error or "the cart cannot be priced")
        return cart

    async def _offers(
        self,
        ctx: RequestContext,
        degraded: list[Degradation],
        overrides: StorefrontOverrides | None = None,
    ) -> tuple[CouponOffer, ...]:
        active = set(overrides.coupon_strategies) if overrides is not None else None
        strategies = [
            s
            for s in self.host.coupon_strategies()
            if (ctx.personalized or not s.personalized) and (active is None or s.name in active)
        ]
        if not strategies:
            return ()
        results = await asyncio.gather(*(self.host.coupon_offers(s.name, ctx) for s in strategies))
        offers: list[CouponOffer] = []
        for result in results:
            if result.problem is not None:
                degraded.append(result.problem)
            elif result.value:
                offers.extend(result.value)
        if not offers:
            return ()
        chosen, problems = self.host.choose_offers(ctx, offers)
        degraded.extend(problems)
        if chosen is None:  # no policy answered: every offer once, in strategy order
            chosen = tuple({o.code: o for o in reversed(offers)}.values())[::-1]
        return tuple(chosen)

    async def _price(
        self,
        ctx: RequestContext,
        degraded: list[Degradation],
        overrides: StorefrontOverrides | None = None,
    ) -> tuple[PricedCart | None, str | None]:
        if not ctx.cart_lines:
            return base_cart((), {}, ctx.currency), None
        if self.pricer is None:  # no pricing engine wired: the undiscounted cart, honestly
            try:
                shipping = Money(self.shipping.get(ctx.currency, 0), ctx.currency)
                return base_cart(ctx.cart_lines, ctx.products, ctx.currency, shipping), None
            except PricingError as exc:
                return None, str(exc)
        try:
            cart = await self._request_pricer(degraded, overrides).price(
                ctx, ctx.cart_lines, ctx.products
            )
        except PricingError as exc:
            return None, str(exc)
        return cart, None

    def _request_pricer(
        self, degraded: list[Degradation], overrides: StorefrontOverrides | None
    ) -> CartPricer:
        """The service's pricer, bound to this request: stored promotions plus plugin ones
        (an experiment variant may choose which), plugin promotions run by the host under their
        deadline and breaker (failing closed), and the ``promotion_stacking`` hook."""
        assert self.pricer is not None
        base = self.pricer
        host = self.host
        chosen: set[str] | None = None
        if overrides is not None and any(
            a.override.promotions is not None for a in overrides.assignments
        ):
            chosen = set(overrides.promotions)

        async def promotions(ctx: RequestContext) -> Sequence[Promotion]:
            found: list[Promotion] = [*await base.promotions(ctx), *host.promotions()]
            if chosen is not None:
                found = [p for p in found if p.terms.name in chosen]
            return found

        def runner_for(ctx: RequestContext) -> PromotionRunner:
            direct = base.runner_for(ctx)

            async def run(
                promotion: Promotion, undiscounted: PricedCart, so_far: PricedCart
            ) -> PromotionOutcome | None:
                if not isinstance(promotion, HostedPromotion):
                    return await direct(promotion, undiscounted, so_far)
                result = await host.apply_promotion(promotion, ctx, undiscounted, so_far)
                if result.problem is not None:
                    degraded.append(result.problem)
                return result.value

            return run

        async def stacking(
            ctx: RequestContext, cart: PricedCart, terms: Sequence[PromotionTerms]
        ) -> StackingPlan | None:
            plan, problems = host.stacking_plan(ctx, cart, terms)
            degraded.extend(problems)
            if plan is None and base.stacking is not None:  # no plugin answered
                fallback = base.stacking(ctx, cart, terms)
                plan = await fallback if inspect.isawaitable(fallback) else fallback
            return plan

        return replace(
            base,
            promotions=promotions,
            runner_for=runner_for,
            stacking=stacking,
            suggest=RecommendedCompletions(host, base.suggest),
        )

    # -- recording what was served ---------------------------------------------------------

    def _record(
        self,
        req: StorefrontRequest,
        request_id: str,
        now: datetime,
        slots: Sequence[Slot],
        results: Sequence[SlotResult],
        overrides: StorefrontOverrides | None = None,
    ) -> None:
        by_slot = overrides.slot_assignments if overrides is not None else {}
        expire_at = now + timedelta(days=self.settings.recommendation_ttl_days)
        docs = [
            {
                "_id": r.recommendation_id,
                "request_id": request_id,
                "user_id": req.user_id,
                "session_id": req.session_id,
                "page": req.page.value,
                "slot": r.name,
                "strategies": list(slot.strategies),
                "items": [
                    {
                        "product_id": item.product.id,
                        "position": item.position,
                        "score": item.score,
                        "strategy": item.strategy,
                    }
                    for item in r.items
                ],
                "experiment": by_slot[r.name].experiment_id if r.name in by_slot else None,
                "variant": by_slot[r.name].variant if r.name in by_slot else None,
                "created_at": now,
                "expire_at": expire_at,
            }
            for slot, r in zip(slots, results, strict=True)
            if r.items
        ]
        if docs:
            self.served.add(docs)

    def _record_exposure(
        self,
        req: StorefrontRequest,
        request_id: str,
        now: datetime,
        results: Sequence[SlotResult],
        offers: Sequence[CouponOffer],
        overrides: StorefrontOverrides,
    ) -> None:
        """Log the exposure in the background: it must not delay the answer."""
        recorder = self.exposures
        if recorder is None:
            return
        served = [
            ServedSlot(
                r.recommendation_id,
                r.name,
                tuple(ServedItem(i.product.id, i.strategy, i.position) for i in r.items),
            )
            for r in results
            if r.items
        ]
        task = asyncio.create_task(
            recorder.record(
                request_id=request_id,
                user_id=req.user_id,
                session_id=req.session_id,
                assignments=overrides.assignments,
                slots=served,
                offers=[ServedOffer(o.code, o.strategy, o.campaign_id) for o in offers],
                now=now,
                slot_assignments=overrides.slot_assignments,
            )
        )
        self._background.add(task)
        task.add_done_callback(self._exposure_done)

    def _exposure_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("exposure not recorded: %s", task.exception())

    async def flush(self) -> None:
        """Write the served slots and exposures still waiting (tests and shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.served.flush()
        # ... including what went to the instance's background writer.
        exposure_writer = self.exposures.writer if self.exposures is not None else None
        for writer in dict.fromkeys(w for w in (self.served.writer, exposure_writer) if w):
            await writer.flush()

    async def close(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.served.close()
