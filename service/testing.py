"""A pytest kit for Shopfront and for plugin authors.

Enable it in a ``conftest.py`` with ``pytest_plugins = ["shopfront.testing"]``. It provides:

- ``mongo_uri``: one MongoDB wire server for the whole test run — the embedded SecantusDB
  server (``:memory:`` storage), or the server named by ``SHOPFRONT_MONGODB_URI``;
- ``settings``: `Settings` pointing at a fresh database of its own for each test;
- ``store``: an open `Store` on that database, dropped afterwards;
- ``app`` / ``client``: the ASGI app with its lifespan running, and an httpx client for it;
- ``merchant_key`` / ``storefront_key``: API keys created in the test database;
- ``graphql``: ``await graphql(query, variables=None, key=..., token=...)`` returning the JSON
  response (``token``: an ``X-Shopper-Token``);
- ``shopper_token``: ``shopper_token("u1", session_id=None)``, a token for that shopper signed
  with the test settings' secret (what the merchant's backend would mint).

For plugin authors (see docs/plugins.md):

- ``plugin_host_with``: ``host = await plugin_host_with(plugin, config={...})``, a started
  `PluginHost` with only that plugin;
- ``storefront_client``: ``sf = await storefront_client([("name", plugin)], config={...})``,
  then ``await sf.query({"userId": "u1", "page": "HOME"})`` (the client mints the shopper
  token a userId needs, as the merchant's backend would);
- ``make_context`` / ``make_cart`` / `StaticCatalog`: a request without a database;
- contract checks ``check_recommender``, ``check_coupon_strategy``, ``check_promotion``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import time
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import pytest
from asgi_lifespan import LifespanManager
from shopfront.app import create_app
from shopfront.catalog.products import Product
from shopfront.extend.config import config_from_mapping
from shopfront.extend.host import BUILTIN_PLUGINS, PluginHost
from shopfront.extend.isolation import (
    OutputError,
    validate_candidates,
    validate_offers,
    validate_outcome,
)
from shopfront.extend.policy import builtin_name
from shopfront.offers.contract import (
    CouponOffer,
    CouponStrategy,
    PricedCart,
    Promotion,
    PromotionOutcome,
    PromotionTerms,
)
from shopfront.offers.pricing import base_cart, check_outcome
from shopfront.platform.config import Settings
from shopfront.platform.embedded import EmbeddedMongo
from shopfront.platform.keys import Role, create_key
from shopfront.platform.money import Money
from shopfront.platform.store import Store, deadline, open_store
from shopfront.recommend.contract import Candidate, Reason, Recommender, Slot
from shopfront.runtime import Runtime
from shopfront.shoppers.context import CartLine, PageType, RequestContext
from shopfront.shoppers.identity import ShopperTokens, TokenError
from shopfront.storefront.composer import Storefront as StorefrontComposer
from shopfront.storefront.sources import ProfileSource
from starlette.applications import Starlette


class GraphQLCall(Protocol):
    def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        key: str | None = ...,
        token: str | None = ...,
    ) -> Awaitable[dict[str, Any]]: ...


# The test settings' shopper-token secret (tests only: production secrets come from the
# merchant's own SHOPFRONT_SHOPPER_TOKEN_SECRETS).
TEST_TOKEN_SECRETS = ("test:shopfront-test-secret-0123456789abcdef",)


def mint_shopper_token(
    settings: Settings, user_id: str, session_id: str | None = None, ttl_seconds: int = 3600
) -> str:
    """A shopper token for ``user_id`` signed with ``settings``' first secret."""
    token, _ = ShopperTokens.from_settings(settings).mint(user_id, session_id, ttl_seconds)
    return token


@pytest.fixture(scope="session")
def embedded_mongo() -> Iterator[EmbeddedMongo | None]:
    """The embedded server for this run, or None when SHOPFRONT_MONGODB_URI names a server."""
    if os.environ.get("SHOPFRONT_MONGODB_URI"):
        yield None
        return
    server = EmbeddedMongo(":memory:", test_commands=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mongo_uri(embedded_mongo: EmbeddedMongo | None) -> str:
    if embedded_mongo is None:
        return os.environ["SHOPFRONT_MONGODB_URI"]
    return embedded_mongo.uri


def test_settings(mongo_uri: str, **overrides: Any) -> Settings:
    """Settings for a test: its own database, development error display, short timeouts."""
    values: dict[str, Any] = {
        "mongodb_uri": mongo_uri,
        "mongodb_database": f"test_{uuid.uuid4().hex[:12]}",
        "environment": "development",
        "mongo_server_selection_timeout_ms": 2000,
        "introspection": True,
        # Hermetic: merchant plugins installed in the environment load only when a test asks.
        "plugins_entry_points": False,
        "shopper_token_secrets": TEST_TOKEN_SECRETS,
    }
    values.update(overrides)
    return Settings.from_env({}, **values)


test_settings.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


@pytest.fixture
def settings(mongo_uri: str) -> Settings:
    return test_settings(mongo_uri)


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    s = await open_store(settings, settings.mongodb_uri)
    try:
        yield s
    finally:
        # Dropping a test database is cleanup, not a request: it gets more than timeoutMS on
        # a busy machine (the embedded server drops GridFS models and events slowly).
        with deadline(60):
            await s.drop_database()
        await s.close()


@pytest.fixture
async def app(settings: Settings, store: Store) -> AsyncIterator[Starlette]:
    """The app, sharing the test's database with the ``store`` fixture."""
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shopfront.test") as c:
        yield c


@pytest.fixture
async def merchant_key(store: Store) -> str:
    _, plaintext = await create_key(store, Role.MERCHANT, "test-merchant")
    return plaintext


@pytest.fixture
async def storefront_key(store: Store) -> str:
    _, plaintext = await create_key(store, Role.STOREFRONT, "test-storefront")
    return plaintext


def graphql_caller(client: httpx.AsyncClient, default_key: str | None) -> GraphQLCall:
    async def call(
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        key: str | None = default_key,
        token: str | None = None,
    ) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        if token:
            headers["x-shopper-token"] = token
        resp = await client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        body: dict[str, Any] = resp.json()
        return body

    return call


class ShopperTokenFactory(Protocol):
    def __call__(
        self, user_id: str, session_id: str | None = ..., ttl_seconds: int = ...
    ) -> str: ...


@pytest.fixture
def shopper_token(settings: Settings) -> ShopperTokenFactory:
    """``shopper_token("u1")``: an X-Shopper-Token for that shopper (the test secret)."""

    def make(user_id: str, session_id: str | None = None, ttl_seconds: int = 3600) -> str:
        return mint_shopper_token(settings, user_id, session_id, ttl_seconds)

    return make


@pytest.fixture
def graphql(client: httpx.AsyncClient, merchant_key: str) -> GraphQLCall:
    """POST a GraphQL operation; the merchant key unless ``key=`` says otherwise."""
    return graphql_caller(client, merchant_key)


AsyncFactory = Callable[..., Awaitable[Any]]


# -- for plugin authors: a host with one plugin, a storefront client, contract checks ------

STOREFRONT_SELECTION = """
requestId
slots { name title recommendationId
        items { position score product { id title active price { amount currency } }
                reasons { code text strategy } } }
coupons { code title expiresAt strategy reason { code text strategy } }
cart { currency subtotal { amount currency } discountTotal { amount currency }
       shipping { amount currency } total { amount currency }
       lines { index productId quantity discount { amount currency } total { amount currency } }
       errors { index productId quantity code message }
       appliedPromotions { name title amount { amount currency } }
       notApplied { name reason code }
       nudges { promotion text productIds } }
degraded { strategy reason }
"""


class StaticCatalog:
    """A `CatalogReader` over products held in memory (for unit tests of strategies)."""

    def __init__(self, products: Iterable[Product] = ()) -> None:
        self.products = {p.id: p for p in products}
        self.lookups: list[tuple[str, ...]] = []

    async def get_many(self, ids: Sequence[str]) -> Mapping[str, Product]:
        self.lookups.append(tuple(ids))
        return {i: self.products[i] for i in ids if i in self.products}


def make_context(
    products: Iterable[Product] = (),
    *,
    page: PageType = PageType.HOME,
    currency: str = "EUR",
    user_id: str | None = "shopper-1",
    cart: Sequence[tuple[str, int]] = (),
    now: datetime | None = None,
    **fields: Any,
) -> RequestContext:
    """A `RequestContext` over an in-memory catalog; ``fields`` set any other context field
    (``profile=``, ``product_id=``, ...). Cart products must be among ``products``."""
    catalog = StaticCatalog(products)
    lines = tuple(CartLine(pid, qty) for pid, qty in cart)
    page_ids = {line.product_id for line in lines} | (
        {fields["product_id"]} if fields.get("product_id") else set()
    )
    return RequestContext(
        request_id=fields.pop("request_id", "test-request"),
        now=now or datetime.now(UTC),
        page=page,
        currency=currency,
        catalog=catalog,
        user_id=user_id,
        cart_lines=lines,
        products={pid: catalog.products[pid] for pid in page_ids if pid in catalog.products},
        **fields,
    )


def make_cart(ctx: RequestContext, shipping: int = 0) -> PricedCart:
    """The undiscounted cart of ``ctx`` (its ``cart_lines`` priced from ``ctx.products``)."""
    return base_cart(ctx.cart_lines, ctx.products, ctx.currency, Money(shipping, ctx.currency))


async def start_plugin_host(
    settings: Settings,
    store: Store,
    plugin: object,
    *,
    name: str = "test_plugin",
    config: Mapping[str, Any] | None = None,
) -> PluginHost:
    """A started `PluginHost` with only ``plugin`` registered (no built-ins, no entry points);
    ``config`` is the config file's content as a mapping (``{"strategies": {...}}``)."""
    return await PluginHost.start(
        settings,
        store,
        builtins=(),
        plugins=[(name, plugin)],
        discover=False,
        config=config_from_mapping(config or {}, source="test config"),
    )


class PluginHostFactory(Protocol):
    def __call__(
        self, plugin: object, *, name: str = ..., config: Mapping[str, Any] | None = ...
    ) -> Awaitable[PluginHost]: ...


@pytest.fixture
async def plugin_host_with(settings: Settings, store: Store) -> AsyncIterator[PluginHostFactory]:
    """``host = await plugin_host_with(plugin, config={...})``: a host with one plugin,
    closed after the test."""
    hosts: list[PluginHost] = []

    async def make(
        plugin: object, *, name: str = "test_plugin", config: Mapping[str, Any] | None = None
    ) -> PluginHost:
        host = await start_plugin_host(settings, store, plugin, name=name, config=config)
        hosts.append(host)
        return host

    try:
        yield make
    finally:
        for host in hosts:
            await host.close()


class StorefrontClient:
    """Queries `storefront` through a running app with a storefront key."""

    def __init__(self, app: Starlette, client: httpx.AsyncClient, key: str) -> None:
        self.app = app
        self.http = client
        self.key = key

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    @property
    def host(self) -> PluginHost:
        host = self.runtime.plugins
        assert host is not None, "the app's lifespan has not started the plugin host"
        return host

    @property
    def composer(self) -> StorefrontComposer:
        composer = self.runtime.storefront
        assert composer is not None, "the app's lifespan has not started the storefront"
        return composer

    async def raw(
        self, input: Mapping[str, Any], selection: str = STOREFRONT_SELECTION
    ) -> dict[str, Any]:
        """The whole GraphQL response (``data`` and ``errors``)."""
        query = (
            "query($input: StorefrontInput!) { storefront(input: $input) { " + selection + " } }"
        )
        headers = {"authorization": f"Bearer {self.key}"}
        user_id = input.get("userId")
        if isinstance(user_id, str) and user_id.strip():
            # What the merchant's backend does for a logged-in shopper.
            with contextlib.suppress(TokenError):  # an id no token can carry: sent without
                headers["x-shopper-token"] = mint_shopper_token(self.runtime.settings, user_id)
        resp = await self.http.post(
            "/graphql", json={"query": query, "variables": {"input": dict(input)}}, headers=headers
        )
        body: dict[str, Any] = resp.json()
        return body

    async def query(
        self, input: Mapping[str, Any], selection: str = STOREFRONT_SELECTION
    ) -> dict[str, Any]:
        """``data.storefront``; fails the test when the response has errors."""
        body = await self.raw(input, selection)
        assert not body.get("errors"), f"storefront errors: {body['errors']}"
        result: dict[str, Any] = body["data"]["storefront"]
        return result


class StorefrontClientFactory(Protocol):
    def __call__(
        self,
        plugins: Sequence[tuple[str, object]] = ...,
        *,
        config: Mapping[str, Any] | None = ...,
        profiles: ProfileSource | None = ...,
        builtins: bool = ...,
        **settings_overrides: Any,
    ) -> Awaitable[StorefrontClient]: ...


@pytest.fixture
async def storefront_client(
    settings: Settings, store: Store
) -> AsyncIterator[StorefrontClientFactory]:
    """``sf = await storefront_client([("mine", plugin)], config={...})``: the app with these
    plugins (and, with ``builtins=True``, the built-in ones), queried with a storefront key.
    ``settings_overrides`` replace settings (``strategy_timeout_ms=...``)."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(
            plugins: Sequence[tuple[str, object]] = (),
            *,
            config: Mapping[str, Any] | None = None,
            profiles: ProfileSource | None = None,
            builtins: bool = False,
            **settings_overrides: Any,
        ) -> StorefrontClient:
            overrides = dict(settings_overrides)
            if not builtins and plugins:
                overrides.setdefault("plugins_allow", tuple(name for name, _ in plugins))
            elif not builtins:
                overrides.setdefault(
                    "plugins_deny", tuple(builtin_name(m) for m in BUILTIN_PLUGINS)
                )
            app_settings = dataclasses.replace(settings, **overrides)
            application = create_app(
                app_settings,
                plugins=plugins,
                plugin_config=config_from_mapping(config or {}, source="test config"),
                profiles=profiles,
            )
            await stack.enter_async_context(
                LifespanManager(application, startup_timeout=30, shutdown_timeout=30)
            )
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=application), base_url="http://shopfront.test"
                )
            )
            _, key = await create_key(store, Role.STOREFRONT, f"storefront-{uuid.uuid4().hex[:6]}")
            return StorefrontClient(application, client, key)

        yield make


class ContractError(AssertionError):
    """A strategy breaks its protocol's contract; the message says how."""


def _frozen_view(ctx: RequestContext) -> RequestContext:
    """A deep copy of ``ctx`` without its catalog, to detect mutation."""
    return copy.deepcopy(dataclasses.replace(ctx, catalog=StaticCatalog()))


def _same(before: RequestContext, ctx: RequestContext) -> bool:
    return dataclasses.replace(before, catalog=ctx.catalog) == ctx


async def _timed(call: Awaitable[Any], deadline_ms: int | None, what: str) -> Any:
    started = time.perf_counter()
    result = await call
    elapsed_ms = (time.perf_counter() - started) * 1000
    if deadline_ms is not None and elapsed_ms > deadline_ms:
        raise ContractError(f"{what} took {elapsed_ms:.0f} ms; the deadline is {deadline_ms} ms")
    return result


async def check_recommender(
    recommender: Recommender,
    ctx: RequestContext,
    slot: Slot,
    *,
    deterministic: bool = True,
    deadline_ms: int | None = None,
) -> tuple[Candidate, ...]:
    """Assert ``recommender`` keeps the `Recommender` contract for this request and slot:
    a list of `Candidate` with string ids, finite scores and `Reason` reasons; each product
    once; at most ``MAX_CANDIDATES``; the same answer twice (unless ``deterministic=False``);
    ``ctx`` and ``slot`` left unchanged; optionally within ``deadline_ms``. Returns the
    candidates for further assertions."""
    if not isinstance(recommender, Recommender):
        raise ContractError(f"{type(recommender).__name__} has no recommend method")
    before, slot_before = _frozen_view(ctx), copy.deepcopy(slot)
    first = await _timed(recommender.recommend(ctx, slot), deadline_ms, "recommend")
    try:
        validate_candidates(first, "check", Reason("CHECK", "check"))
    except OutputError as exc:
        raise ContractError(f"recommend returned invalid output: {exc}") from None
    ids = [c.product_id for c in first]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ContractError(f"recommend returned products more than once: {repeated}")
    if deterministic:
        second = await recommender.recommend(ctx, slot)
        if list(second) != list(first):
            raise ContractError("recommend gave different answers for the same request")
    if not _same(before, ctx) or slot != slot_before:
        raise ContractError("recommend changed the request context or the slot")
    return tuple(first)


async def check_coupon_strategy(
    strategy: CouponStrategy,
    ctx: RequestContext,
    *,
    deterministic: bool = True,
    deadline_ms: int | None = None,
) -> tuple[CouponOffer, ...]:
    """Assert ``strategy`` keeps the `CouponStrategy` contract: a list of `CouponOffer` with a
    code, title and reason, each code once; the same answer twice (pass
    ``deterministic=False`` for a strategy that mints unique codes); ``ctx`` unchanged."""
    if not isinstance(strategy, CouponStrategy):
        raise ContractError(f"{type(strategy).__name__} has no offers method")
    before = _frozen_view(ctx)
    first = await _timed(strategy.offers(ctx), deadline_ms, "offers")
    try:
        validate_offers(first, "check")
    except OutputError as exc:
        raise ContractError(f"offers returned invalid output: {exc}") from None
    codes = [o.code for o in first]
    if len(set(codes)) != len(codes):
        raise ContractError(f"offers returned a code more than once: {codes}")
    if deterministic and list(await strategy.offers(ctx)) != list(first):
        raise ContractError("offers gave different answers for the same request")
    if not _same(before, ctx):
        raise ContractError("offers changed the request context")
    return tuple(first)


async def check_promotion(
    promotion: Promotion,
    ctx: RequestContext,
    cart: PricedCart | None = None,
    *,
    deadline_ms: int | None = None,
) -> PromotionOutcome:
    """Assert ``promotion`` keeps the `Promotion` contract on ``cart`` (default: the cart of
    ``ctx``): `PromotionTerms` terms; a `PromotionOutcome` whose discounts the pricing chain
    accepts; the same outcome twice; nothing mutated; and an empty cart gives a valid outcome
    rather than an exception. Returns the outcome on ``cart``."""
    if not isinstance(promotion, Promotion):
        raise ContractError(f"{type(promotion).__name__} is not a Promotion (terms and apply)")
    if not isinstance(promotion.terms, PromotionTerms):
        raise ContractError(f"terms must be PromotionTerms, got {type(promotion.terms).__name__}")
    priced = cart if cart is not None else make_cart(ctx)
    before, cart_before = _frozen_view(ctx), copy.deepcopy(priced)
    outcomes = []
    empty = base_cart((), {}, ctx.currency)
    for target in (priced, empty):
        try:
            outcome = await _timed(promotion.apply(ctx, target, target), deadline_ms, "apply")
        except Exception as exc:
            if target is not empty:
                raise
            raise ContractError(
                f"apply raised {type(exc).__name__} for an empty cart; return "
                "PromotionOutcome(applied=False, ...) for a cart it does not apply to"
            ) from exc
        try:
            validate_outcome(outcome)
        except OutputError as exc:
            raise ContractError(f"apply returned invalid output: {exc}") from None
        if outcome.applied:
            problem = check_outcome(outcome, target)
            if problem is not None:
                raise ContractError(f"apply gave a discount the chain refuses: {problem}")
        outcomes.append(outcome)
    if await promotion.apply(ctx, priced, priced) != outcomes[0]:
        raise ContractError("apply gave different outcomes for the same cart")
    if not _same(before, ctx) or priced != cart_before:
        raise ContractError("apply changed the request context or the cart")
    result: PromotionOutcome = outcomes[0]
    return result
