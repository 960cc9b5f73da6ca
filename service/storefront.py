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
import contextlib
import inspect
import logging
import math
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from strawberry.dataloader import DataLoader

from service.catalog import Product, get_products
from service.config import ConfigError, Settings
from service.experiments import (
    ExperimentRegistry,
    ExposureRecorder,
    ServedItem,
    ServedOffer,
    ServedSlot,
    StorefrontOverrides,
    apply_overrides,
)
from service.money import Money, is_currency
from service.plugin_api import (
    Candidate,
    CartLine,
    CouponOffer,
    PageType,
    PricedCart,
    ProductScope,
    Promotion,
    PromotionOutcome,
    PromotionTerms,
    Reason,
    RequestContext,
    Slot,
    SlotFilter,
    StackingPlan,
)
from service.plugin_config import ConfigFile
from service.plugin_host import (
    CallObservation,
    Degradation,
    HostedPromotion,
    PluginHost,
    StrategyKind,
)
from service.pricing import (
    CartPricer,
    NudgeSuggester,
    PricingError,
    PromotionRunner,
    base_cart,
)
from service.runtime import Runtime
from service.shopper import Profile
from service.store import DatabaseUnavailable, PyMongoError, Store

log = logging.getLogger(__name__)

RECOMMENDATIONS = "recommendations"
# Collections holding shopper data, with the field naming the shopper (privacy export/erase).
USER_DATA: dict[str, str] = {RECOMMENDATIONS: "user_id"}

MAX_SLOT_LIMIT = 50
MAX_SLOTS = 10
MAX_CART_LINES = 100
MAX_QUANTITY = 999
MAX_COUPON_CODES = 20
MAX_ID_LEN = 200
MAX_QUERY_LEN = 500
MAX_CATEGORY_DEPTH = 10
MAX_LOOKUP = 2000  # products one catalog lookup may ask for
RECORD_INTERVAL_S = 0.1  # served slots are written at most this long after they are served
RECORD_BATCH = 1000  # ... or as soon as this many are waiting
RECORD_BACKLOG = 20_000  # beyond this (the database is down) the oldest are dropped


class StorefrontInputError(ValueError):
    """The storefront request is invalid; the message names the field."""


# -- the profile -------------------------------------------------------------------------


class ProfileSource(Protocol):
    """Loads a shopper's profile as of ``now``; None for a shopper we know nothing about."""

    async def load(self, user_id: str, now: datetime) -> Profile | None: ...


class AnonymousProfiles:
    """Serves every shopper without a profile (non-personalized strategies still work)."""

    async def load(self, user_id: str, now: datetime) -> Profile | None:
        return None


class FunctionProfileSource:
    """Adapts a ``load_profile(store, user_id, now)`` function to `ProfileSource`."""

    def __init__(
        self,
        store: Store,
        load_profile: Callable[[Store, str, datetime], Awaitable[Profile | None]],
    ) -> None:
        self._store = store
        self._load = load_profile

    async def load(self, user_id: str, now: datetime) -> Profile | None:
        return await self._load(self._store, user_id, now)


# -- the catalog, per request -------------------------------------------------------------


def product_loader(store: Store) -> DataLoader[str, Product | None]:
    """A per-request DataLoader over `catalog.get_products`: one round trip per batch."""

    async def batch(ids: list[str]) -> list[Product | None]:
        found = await get_products(store, ids)
        return [found.get(i) for i in ids]

    return DataLoader(load_fn=batch, max_batch_size=MAX_LOOKUP)


class RequestCatalog:
    """`CatalogReader` over the request's DataLoader, usable from any event loop.

    Strategies run on their plugin's loop (see `service.plugin_isolation`); a lookup from
    there is handed to the request's loop, so every lookup of the request shares one cache and
    one batch, and the database client is only used on the loop it belongs to.
    """

    def __init__(
        self, loader: DataLoader[str, Product | None], loop: asyncio.AbstractEventLoop
    ) -> None:
        self._loader = loader
        self._loop = loop

    async def _load(self, ids: list[str]) -> list[Product | None]:
        return list(await self._loader.load_many(ids))

    async def get_many(self, ids: Sequence[str]) -> Mapping[str, Product]:
        """Products by id (inactive ones included; unknown ids left out). A strategy may ask
        for at most `MAX_LOOKUP` at a time: more means a pass over the catalog."""
        unique = list(dict.fromkeys(str(i) for i in ids))
        if len(unique) > MAX_LOOKUP:
            raise ValueError(f"at most {MAX_LOOKUP} products per lookup, got {len(unique)}")
        return await self.load_all(unique)

    async def load_all(self, ids: Sequence[str]) -> Mapping[str, Product]:
        """`get_many` without the bound (the host's own lookups; batched by the loader)."""
        unique = list(dict.fromkeys(str(i) for i in ids))
        if not unique:
            return {}
        if asyncio.get_running_loop() is self._loop:
            found = await self._load(unique)
        else:
            future = asyncio.run_coroutine_threadsafe(self._load(unique), self._loop)
            found = await asyncio.wrap_future(future)
        return {i: p for i, p in zip(unique, found, strict=True) if p is not None}


# -- slots --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotConfig:
    """A configured slot: ``[[slots.<PAGE>]]`` in the config file, or a built-in default."""

    name: str
    title: str
    strategies: tuple[str, ...]
    limit: int = 10
    weights: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    # Restrict candidates to the page's category (CATEGORY pages).
    filter_category: bool = False


def _slot(name: str, title: str, *strategies: str, **kw: Any) -> SlotConfig:
    return SlotConfig(name, title, tuple(strategies), **kw)


_COMPLETE = _slot("complete_your_order", "Complete your order", "bought_together", "trending")
DEFAULT_SLOTS: dict[PageType, tuple[SlotConfig, ...]] = {
    PageType.HOME: (
        _slot("recommended_for_you", "Recommended for you", "recommended_for_you", "trending"),
        _slot("trending", "Trending now", "trending"),
        _slot("recently_viewed", "Recently viewed", "recently_viewed"),
    ),
    PageType.PRODUCT: (
        _slot("similar_items", "Similar items", "similar_items"),
        _slot("bought_together", "Frequently bought together", "bought_together"),
    ),
    PageType.CART: (_COMPLETE,),
    PageType.CATEGORY: (
        _slot(
            "trending_in_category", "Trending in this category", "trending", filter_category=True
        ),
    ),
    PageType.SEARCH: (_slot("trending", "Trending now", "trending"),),
    PageType.CHECKOUT: (_COMPLETE,),
}

_SLOT_KEYS = ("name", "title", "strategies", "limit", "weights", "params", "filter_category")


def humanize(name: str) -> str:
    text = name.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def slots_from_config(
    raw: Mapping[str, Any], source: str = "config"
) -> dict[PageType, tuple[SlotConfig, ...]]:
    """``DEFAULT_SLOTS`` with the pages the ``[slots]`` section configures replaced."""
    slots = dict(DEFAULT_SLOTS)
    for page_name, entries in raw.items():
        try:
            page = PageType(page_name)
        except ValueError:
            raise ConfigError(
                f"{source}: [slots.{page_name}]: unknown page type; "
                f"known: {', '.join(p.value for p in PageType)}"
            ) from None
        if not isinstance(entries, list):
            raise ConfigError(f"{source}: slots.{page_name} must be an array of tables")
        configured: list[SlotConfig] = []
        for i, entry in enumerate(entries):
            where = f"{source}: slots.{page_name}[{i}]"
            if not isinstance(entry, Mapping):
                raise ConfigError(f"{where} must be a table")
            unknown = sorted(set(entry) - set(_SLOT_KEYS))
            if unknown:
                raise ConfigError(
                    f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(_SLOT_KEYS)}"
                )
            configured.append(_slot_config(entry, where))
        names = [s.name for s in configured]
        if len(set(names)) != len(names):
            raise ConfigError(f"{source}: slots.{page_name}: slot names must be unique")
        slots[page] = tuple(configured)
    return slots


def _slot_config(entry: Mapping[str, Any], where: str) -> SlotConfig:
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}.name: required, a non-empty string")
    strategies = entry.get("strategies")
    if (
        not isinstance(strategies, list)
        or not strategies
        or not all(isinstance(s, str) and s for s in strategies)
    ):
        raise ConfigError(f"{where}.strategies: required, a non-empty array of strategy names")
    title = entry.get("title", humanize(name))
    if not isinstance(title, str):
        raise ConfigError(f"{where}.title: must be a string")
    limit = entry.get("limit", 10)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SLOT_LIMIT:
        raise ConfigError(f"{where}.limit: must be a whole number from 1 to {MAX_SLOT_LIMIT}")
    weights = entry.get("weights", {})
    if not isinstance(weights, Mapping) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
        for v in weights.values()
    ):
        raise ConfigError(f"{where}.weights: must be a table of non-negative numbers")
    params = entry.get("params", {})
    if not isinstance(params, Mapping):
        raise ConfigError(f"{where}.params: must be a table")
    filter_category = entry.get("filter_category", False)
    if not isinstance(filter_category, bool):
        raise ConfigError(f"{where}.filter_category: must be true or false")
    return SlotConfig(
        name=name.strip(),
        title=title,
        strategies=tuple(strategies),
        limit=limit,
        weights={k: float(v) for k, v in weights.items()},
        params=dict(params),
        filter_category=filter_category,
    )


def shipping_from_config(raw: Mapping[str, Any], source: str = "config") -> dict[str, int]:
    """``[shipping]``: flat shipping per currency, in minor units."""
    out: dict[str, int] = {}
    for currency, amount in raw.items():
        if not is_currency(currency):
            raise ConfigError(f"{source}: [shipping] {currency!r} is not an ISO 4217 code")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise ConfigError(
                f"{source}: [shipping] {currency}: must be a non-negative whole number of "
                "minor units"
            )
        out[currency] = amount
    return out


# -- the request and the answer -----------------------------------------------------------


@dataclass(frozen=True)
class SlotOverride:
    name: str
    strategy: str | None = None
    limit: int | None = None


@dataclass(frozen=True)
class StorefrontRequest:
    """What the storefront asks. ``slots`` None: the page's configured slots; a list (even
    empty): exactly those slots."""

    page: PageType
    user_id: str | None = None
    session_id: str | None = None
    product_id: str | None = None
    category_path: tuple[str, ...] | None = None
    search_query: str | None = None
    cart_lines: tuple[CartLine, ...] = ()
    coupon_codes: tuple[str, ...] = ()
    currency: str | None = None
    slots: tuple[SlotOverride, ...] | None = None


@dataclass(frozen=True)
class SlotItem:
    position: int
    score: float
    product: Product
    reasons: tuple[Reason, ...]

    @property
    def strategy(self) -> str:
        return self.reasons[0].strategy if self.reasons else ""


@dataclass(frozen=True)
class SlotResult:
    name: str
    title: str
    recommendation_id: str
    items: tuple[SlotItem, ...]


@dataclass(frozen=True)
class StorefrontResult:
    request_id: str
    currency: str
    slots: tuple[SlotResult, ...]
    coupons: tuple[CouponOffer, ...]
    cart: PricedCart | None
    cart_error: str | None  # why the cart could not be priced (a product is unavailable, ...)
    products: Mapping[str, Product]  # the cart's and the nudges' products
    degraded: tuple[Degradation, ...]
    experiments: tuple[tuple[str, str], ...] = ()  # (experiment name, variant) that served it


def _text(value: str | None, name: str, max_len: int = MAX_ID_LEN) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise StorefrontInputError(f"{name} must not be blank")
    if len(value) > max_len:
        raise StorefrontInputError(f"{name} is longer than {max_len} characters")
    return value


def validate_request(req: StorefrontRequest, settings: Settings) -> StorefrontRequest:
    """The request with its text trimmed and its currency resolved, or a
    `StorefrontInputError` naming the field."""
    user_id = _text(req.user_id, "userId")
    session_id = _text(req.session_id, "sessionId")
    if user_id is None and session_id is None:
        raise StorefrontInputError("userId or sessionId is required (at least one of them)")
    product_id = _text(req.product_id, "productId")
    if req.page is PageType.PRODUCT and product_id is None:
        raise StorefrontInputError("productId is required on a PRODUCT page")
    category_path = None
    if req.category_path is not None:
        if len(req.category_path) > MAX_CATEGORY_DEPTH:
            raise StorefrontInputError(f"categoryPath has more than {MAX_CATEGORY_DEPTH} levels")
        category_path = tuple(
            _text(part, f"categoryPath[{i}]") or "" for i, part in enumerate(req.category_path)
        )
    if req.page is PageType.CATEGORY and not category_path:
        raise StorefrontInputError("categoryPath is required on a CATEGORY page")
    search_query = _text(req.search_query, "searchQuery", MAX_QUERY_LEN)
    if len(req.cart_lines) > MAX_CART_LINES:
        raise StorefrontInputError(f"cart.lines: at most {MAX_CART_LINES} lines")
    lines = []
    for i, line in enumerate(req.cart_lines):
        pid = _text(line.product_id, f"cart.lines[{i}].productId") or ""
        if not 1 <= line.quantity <= MAX_QUANTITY:
            raise StorefrontInputError(
                f"cart.lines[{i}].quantity must be from 1 to {MAX_QUANTITY}, got {line.quantity}"
            )
        lines.append(CartLine(pid, line.quantity))
    if len(req.coupon_codes) > MAX_COUPON_CODES:
        raise StorefrontInputError(f"cart.couponCodes: at most {MAX_COUPON_CODES} codes")
    codes = tuple(
        _text(c, f"cart.couponCodes[{i}]", 64) or "" for i, c in enumerate(req.coupon_codes)
    )
    currency = (req.currency or settings.default_currency).strip().upper()
    if not is_currency(currency):
        raise StorefrontInputError(f"currency {req.currency!r} is not an ISO 4217 code")
    slots = None
    if req.slots is not None:
        if len(req.slots) > MAX_SLOTS:
            raise StorefrontInputError(f"slots: at most {MAX_SLOTS} slots")
        slots = []
        for i, o in enumerate(req.slots):
            name = _text(o.name, f"slots[{i}].name", 64) or ""
            strategy = _text(o.strategy, f"slots[{i}].strategy", 64)
            if o.limit is not None and not 1 <= o.limit <= MAX_SLOT_LIMIT:
                raise StorefrontInputError(
                    f"slots[{i}].limit must be from 1 to {MAX_SLOT_LIMIT}, got {o.limit}"
                )
            slots.append(SlotOverride(name, strategy, o.limit))
        names = [s.name for s in slots]
        if len(set(names)) != len(names):
            raise StorefrontInputError("slots: each slot name may appear once")
    return replace(
        req,
        user_id=user_id,
        session_id=session_id,
        product_id=product_id,
        category_path=category_path,
        search_query=search_query,
        cart_lines=tuple(lines),
        coupon_codes=codes,
        currency=currency,
        slots=tuple(slots) if slots is not None else None,
    )


# -- blending ------------------------------------------------------------------------------


def merge_by_score(slot: Slot, candidates: Mapping[str, Sequence[Candidate]]) -> list[Candidate]:
    """The host's last resort when no plugin answers ``blend_candidates``: each strategy's
    scores divided by its largest, weighted by ``slot.weights`` (default 1), summed per
    product; ties keep first-seen order. Deliberately minimal — the real blend is a plugin."""
    scores: dict[str, float] = {}
    reasons: dict[str, list[Reason]] = {}
    for name in slot.strategies:
        found = candidates.get(name) or ()
        if not found:
            continue
        top = max(abs(c.score) for c in found) or 1.0
        weight = slot.weights.get(name, 1.0)
        for c in found:
            scores[c.product_id] = scores.get(c.product_id, 0.0) + weight * c.score / top
            kept = reasons.setdefault(c.product_id, [])
            kept.extend(r for r in c.reasons if r not in kept)
    order = {pid: i for i, pid in enumerate(scores)}
    ranked = sorted(scores, key=lambda pid: (-scores[pid], order[pid]))
    return [Candidate(pid, scores[pid], tuple(reasons[pid])) for pid in ranked]


def enforce_rules(
    ranked: Sequence[Candidate], products: Mapping[str, Product], limit: int
) -> tuple[SlotItem, ...]:
    """Safety, not policy: only known, active products, each once, at most ``limit``,
    positioned 1..n."""
    items: list[SlotItem] = []
    seen: set[str] = set()
    for c in ranked:
        product = products.get(c.product_id)
        if product is None or not product.active or c.product_id in seen:
            continue
        seen.add(c.product_id)
        items.append(SlotItem(len(items) + 1, c.score, product, c.reasons))
        if len(items) == limit:
            break
    return tuple(items)


# -- recording what was served -------------------------------------------------------------


class RecommendationLog:
    """Writes served slots to ``recommendations`` in batches: one ``insert_many`` per
    `RECORD_INTERVAL_S` (or per `RECORD_BATCH` slots) across all requests, off the request
    path. Attribution reads these later, so a delay of a fraction of a second costs nothing,
    while one write per request would double the storefront's database load."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._buffer: list[dict[str, Any]] = []
        self._timer: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.dropped = 0

    def add(self, docs: list[dict[str, Any]]) -> None:
        self._buffer.extend(docs)
        overflow = len(self._buffer) - RECORD_BACKLOG
        if overflow > 0:
            del self._buffer[:overflow]
            self.dropped += overflow
            log.warning("recommendation log backlog full: dropped %d served slots", overflow)
        if self._timer is None or self._timer.done():
            delay = 0.0 if len(self._buffer) >= RECORD_BATCH else RECORD_INTERVAL_S
            self._timer = asyncio.get_running_loop().create_task(self._flush_after(delay))

    async def _flush_after(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        await self.flush()

    async def flush(self) -> None:
        """Write everything waiting now (one batch at a time)."""
        async with self._lock:
            while self._buffer:
                batch, self._buffer = self._buffer[:RECORD_BATCH], self._buffer[RECORD_BATCH:]
                try:
                    await self._store.collection(RECOMMENDATIONS).insert_many(batch, ordered=False)
                except PyMongoError as exc:
                    log.warning("could not record %d served slots: %s", len(batch), exc)

    async def close(self) -> None:
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        await self.flush()


# -- composition ---------------------------------------------------------------------------


FALLBACK_ENTRIES = 1024


def is_personalized(host: PluginHost, name: str) -> bool:
    """Whether strategy ``name`` uses shopper data (an unknown strategy counts as one)."""
    hosted = host.strategy(name)
    return hosted is None or hosted.personalized


# Strategies asked for products that complete a nudge, in order of preference.
NUDGE_STRATEGIES = ("bought_together", "recommended_for_you", "session", "trending")
NUDGE_POOL = 50


class RecommendedCompletions:
    """Promotion-aware suggestions: the recommenders' candidates for this shopper, kept when
    they count towards the nudge (eligible, in stock, not in the cart, and for a spend nudge
    priced to close the gap), ranked by the recommenders; the catalog suggester fills up
    when they do not give enough."""

    def __init__(self, host: PluginHost, fallback: NudgeSuggester | None) -> None:
        self.host = host
        self.fallback = fallback
        # Made per request (see `Storefront._request_pricer`), so this cache is per request.
        self._pool: asyncio.Future[tuple[dict[str, float], Mapping[str, Product]]] | None = None

    async def __call__(
        self,
        ctx: RequestContext,
        kind: str,
        missing: Money | None,
        eligible: ProductScope,
        limit: int,
    ) -> list[str]:
        if self._pool is None:  # one ask of the recommenders per request, whatever the nudges
            self._pool = asyncio.ensure_future(self._candidates(ctx))
        score, found = await self._pool
        usable = [
            pid
            for pid, product in found.items()
            if product.active
            and product.in_stock
            and product.price.currency == ctx.currency
            and eligible.matches(product)
        ]

        # A spend nudge prefers products that close the gap on their own.
        def closes(pid: str) -> bool:
            return missing is None or found[pid].price.amount >= missing.amount

        chosen = sorted(usable, key=lambda pid: (not closes(pid), -score[pid], pid))[:limit]
        if len(chosen) < limit and self.fallback is not None:
            more = await self.fallback(ctx, kind, missing, eligible, limit)
            chosen += [pid for pid in more if pid not in chosen][: limit - len(chosen)]
        return chosen

    async def _candidates(
        self, ctx: RequestContext
    ) -> tuple[dict[str, float], Mapping[str, Product]]:
        """The recommenders' products for this shopper (not in the cart), scored by rank."""
        names = [
            n
            for n in NUDGE_STRATEGIES
            if self.host.unavailable(n, StrategyKind.RECOMMENDER) is None
            and (ctx.personalized or not is_personalized(self.host, n))
        ]
        slot = Slot(
            name="nudge", title="Complete your order", strategies=tuple(names), limit=NUDGE_POOL
        )
        results = await asyncio.gather(*(self.host.recommend(n, ctx, slot) for n in names))
        score: dict[str, float] = {}
        for weight, result in zip(range(len(names), 0, -1), results, strict=True):
            for rank, cand in enumerate(result.value or ()):
                score[cand.product_id] = score.get(cand.product_id, 0.0) + weight / (rank + 1)
        in_cart = {line.product_id for line in ctx.cart_lines}
        found = await ctx.catalog.get_many([pid for pid in score if pid not in in_cart])
        return score, found


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
        # The pricing engine (service.pricing); set by `start_components`.
        self.pricer: CartPricer | None = None
        # Set by the app once experiments are loaded (service.experiments); None: no experiments.
        self.experiments: ExperimentRegistry | None = None
        self.exposures: ExposureRecorder | None = None
        self._background: set[asyncio.Task[Any]] = set()
        # Last good non-personalized slots per page, served while the database is down.
        self._fallback: OrderedDict[tuple[str, ...], tuple[SlotResult, ...]] = OrderedDict()
        # Set by the app to its health monitor's view; always up without one.
        self.database_up: Callable[[], bool] = lambda: True

    def resolve_slots(self, req: StorefrontRequest) -> list[Slot]:
        page_slots = self.slots[req.page]
        if req.slots is None:
            chosen = list(page_slots)
        else:
            by_name = {s.name: s for page in self.slots.values() for s in page}
            by_name.update({s.name: s for s in page_slots})
            chosen = []
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
                if o.limit is not None:
                    base = replace(base, limit=o.limit)
                chosen.append(base)
        return [
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

    async def _profile(
        self, user_id: str | None, now: datetime, degraded: list[Degradation]
    ) -> Profile | None:
        if user_id is None:
            return None
        try:
            return await self.profiles.load(user_id, now)
        except (PyMongoError, OSError, TimeoutError) as exc:
            # Serve the page without personalization rather than not at all.
            log.warning("profile of %r unavailable: %s", user_id, exc)
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
            return self._last_known_good(key, request_id, req, "database unavailable")
        try:
            async with asyncio.timeout(self.settings.storefront_budget_ms / 1000):
                result = await self._compose(req, request_id=request_id, now=now, loader=loader)
        except (PyMongoError, OSError, TimeoutError) as exc:
            log.warning(
                "storefront %s: database problem, serving last known good: %s", request_id, exc
            )
            return self._last_known_good(key, request_id, req, "database unavailable")
        self._remember(key, result)
        return result

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
            slots=tuple(replace(r, recommendation_id=uuid.uuid4().hex) for r in slots),
            coupons=(),
            cart=None if req.cart_lines else base_cart((), {}, currency),
            cart_error="the cart cannot be priced while the database is unavailable"
            if req.cart_lines
            else None,
            products={},
            degraded=(Degradation("database", f"{why}: last known good results"),),
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
        # Experiments: assignment is in-memory hashing, no database round trip.
        assignments = (
            self.experiments.assign(req.user_id or req.session_id, now) if self.experiments else []
        )
        overrides: StorefrontOverrides | None = None
        if assignments:
            overrides = apply_overrides(
                slots,
                [s.name for s in self.host.coupon_strategies()],
                [p.terms.name for p in self.host.promotions()],
                assignments,
            )
            slots = list(overrides.slots)
        catalog = RequestCatalog(loader or product_loader(self.store), asyncio.get_running_loop())
        degraded: list[Degradation] = []
        page_ids = [req.product_id] if req.product_id else []
        page_ids += [line.product_id for line in req.cart_lines]
        products, profile = await asyncio.gather(
            catalog.load_all(page_ids), self._profile(req.user_id, now, degraded)
        )
        recent = [req.product_id] if req.product_id else []
        recent += [line.product_id for line in reversed(req.cart_lines)]
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
            cart_lines=req.cart_lines,
            coupon_codes=req.coupon_codes,
            profile=profile,
            personalized=(profile.personalized if profile is not None else True)
            and (overrides is None or overrides.personalized),
            session_recent=tuple(dict.fromkeys(recent)),
            products=products,
            overrides=overrides.strategy_params if overrides is not None else {},
        )

        calls: list[tuple[int, str]] = []
        for i, slot in enumerate(slots):
            for name in dict.fromkeys(slot.strategies):
                problem = self.host.unavailable(name, StrategyKind.RECOMMENDER)
                if problem is not None:
                    degraded.append(problem)
                    continue
                if not ctx.personalized and is_personalized(self.host, name):
                    continue  # the shopper withheld consent: personalized strategies sit out
                calls.append((i, name))
        results, offers, (cart, cart_error) = await asyncio.gather(
            asyncio.gather(*(self.host.recommend(name, ctx, slots[i]) for i, name in calls)),
            self._offers(ctx, degraded, overrides),
            self._price(ctx, degraded, overrides),
        )
        by_slot: list[dict[str, Sequence[Candidate]]] = [{} for _ in slots]
        for (i, name), result in zip(calls, results, strict=True):
            if result.problem is not None:
                degraded.append(result.problem)
            elif result.value is not None:
                by_slot[i][name] = result.value

        wanted = {c.product_id for found in by_slot for cands in found.values() for c in cands}
        if cart is not None:
            wanted.update(pid for nudge in cart.nudges for pid in nudge.product_ids)
        more = await catalog.load_all(sorted(wanted - set(products))) if wanted else {}
        known = {**products, **more}

        slot_results: list[SlotResult] = []
        for slot, candidates in zip(slots, by_slot, strict=True):
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
            slot_results.append(SlotResult(slot.name, slot.title, uuid.uuid4().hex, items))
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
            products=known,
            degraded=tuple(dict.fromkeys(degraded)),
            experiments=tuple(
                (a.experiment_name, a.variant)
                for a in (overrides.assignments if overrides is not None else ())
            ),
        )

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

    async def close(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.served.close()


# -- lifecycle -----------------------------------------------------------------------------


async def start_components(
    runtime: Runtime,
    *,
    plugins: Sequence[tuple[str, object]] = (),
    plugin_config: ConfigFile | None = None,
    profiles: ProfileSource | None = None,
) -> None:
    """Start the plugin host and the storefront composer into ``runtime.components``
    (``"plugins"`` and ``"storefront"``)."""
    from service import events, privacy
    from service.profiles import load_profile

    host = await PluginHost.start(
        runtime.settings, runtime.store, plugins=plugins, config=plugin_config
    )
    try:
        composer = Storefront(
            host,
            runtime.store,
            runtime.settings,
            profiles or FunctionProfileSource(runtime.store, load_profile),
        )
    except BaseException:
        await host.close()
        raise
    runtime.components["plugins"] = host
    runtime.components["storefront"] = composer

    _observe_strategies(runtime, host)

    # Trained models: every instance loads the active version and follows activations.
    from service.models import ModelRegistry

    registry = ModelRegistry(runtime.store, runtime.settings)
    for hosted in host.strategies(StrategyKind.RECOMMENDER):
        if hosted.obj is not None:
            registry.attach(hosted.name, hosted.obj)
    await registry.start()  # also retrains on SHOPFRONT_TRAINING_INTERVAL_MINUTES, if set
    runtime.components["models"] = registry
    from service.promotions import PromotionBook, PromotionTypes, cart_pricer

    # Stored promotions may be of the built-in types or of a type a loaded plugin registers.
    builtin_types = PromotionTypes.builtin()
    extra = [s for s in host.managed_promotion_types() if s.name not in builtin_types.names]
    runtime.components["promotion_book"] = PromotionBook(
        runtime.store,
        runtime.settings,
        PromotionTypes([*(builtin_types.get(n) for n in builtin_types.names), *extra]),
    )

    # The engine's shipping fees come from the settings; a [shipping] table in the config
    # file overrides them per currency.
    pricer = cart_pricer(runtime)
    fees = dict(pricer.shipping_fees)
    fees.update({cur: Money(amount, cur) for cur, amount in composer.shipping.items()})
    composer.pricer = replace(pricer, shipping_fees=fees)

    # Plugins hear about stored events and erasures through their hooks.
    async def plugins_on_event(event: Mapping[str, Any]) -> None:
        await host.emit_event(event)

    async def plugin_state(user_id: str) -> int:
        return sum((await host.erase_user(user_id)).values())

    async def profile_loader(user_id: str, now: datetime) -> Profile | None:
        return await load_profile(runtime.store, user_id, now)

    # Coupon validation and redemption read segment data through this component.
    runtime.components.setdefault("profile_loader", profile_loader)
    events.event_hooks(runtime.components).listeners.append(plugins_on_event)
    privacy.privacy_hooks(runtime.components).erasers.append(plugin_state)


def _observe_strategies(runtime: Runtime, host: PluginHost) -> None:
    """Feed every strategy call and breaker state into the Prometheus metrics, so /metrics
    and the `plugins` query tell the same story."""
    from service.metrics import BreakerState as MetricState
    from service.metrics import metrics_of

    metrics = metrics_of(runtime)
    if metrics is None:
        return

    def observe(call: CallObservation) -> None:
        kind = call.kind.value
        if call.outcome == "short_circuit":  # the breaker is open: no call was made
            metrics.strategy_skipped.labels(kind, call.strategy).inc()
            return
        metrics.record_strategy_call(
            kind,
            call.strategy,
            call.seconds,
            failed=call.outcome in ("error", "invalid"),
            timed_out=call.outcome == "timeout",
        )
        hosted = host.strategy(call.strategy)
        if hosted is not None:
            state = MetricState[hosted.breaker.state.name]
            metrics.set_breaker_state(kind, call.strategy, state)

    host.add_observer(observe)


async def stop_components(runtime: Runtime) -> None:
    from service.models import ModelRegistry

    registry = runtime.components.pop("models", None)
    if isinstance(registry, ModelRegistry):
        await registry.stop()
    composer = runtime.components.pop("storefront", None)
    if isinstance(composer, Storefront):
        await composer.close()
    host = runtime.components.pop("plugins", None)
    if isinstance(host, PluginHost):
        await host.close()
