"""Catalog queries and mutations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import strawberry
from graphql import GraphQLError
from shopfront.catalog import products as catalog
from shopfront.platform.keys import Role
from shopfront.schema.context import Context
from shopfront.schema.errors import ErrorCode, user_error
from shopfront.schema.pagination import DEFAULT_FIRST, Connection, Edge, check_first
from shopfront.schema.permissions import merchant_mutation, storefront_field
from shopfront.schema.types import (
    DeleteProductsResult,
    PageInfo,
    Product,
    ProductFilterInput,
    ProductInput,
    ProductUpsertResult,
    UpsertStatus,
)
from strawberry.types import Info

MAX_TITLE_SEARCH = 100


def bad_input(message: str) -> GraphQLError:
    return user_error(message)


@strawberry.input(description="Products to create or replace.")
class UpsertProductsInput:
    products: list[ProductInput]


@strawberry.input(description="Products to delete.")
class DeleteProductsInput:
    product_ids: list[strawberry.ID]


@strawberry.type
class CatalogQuery:
    @storefront_field(description="One active product by id (merchant keys also see inactive).")
    async def product(self, info: Info[Context, Any], id: strawberry.ID) -> Product | None:
        ctx = info.context
        snapshot = ctx.runtime.catalog
        if snapshot is None:
            found = await catalog.get_product(
                ctx.runtime.store, str(id), include_inactive=ctx.role is Role.MERCHANT
            )
        else:
            found = snapshot.get(str(id)) or (await snapshot.lookup([str(id)])).get(str(id))
            if found is not None and not found.active and ctx.role is not Role.MERCHANT:
                found = None
        return Product.of(found) if found else None

    @storefront_field(description="Products in id order, filtered, with cursor pagination.")
    async def products(
        self,
        info: Info[Context, Any],
        filter: ProductFilterInput | None = None,
        first: int = DEFAULT_FIRST,
        after: str | None = None,
    ) -> Connection[Product]:
        ctx = info.context
        check_first(first, ctx.runtime.settings.max_page_size)
        f = filter or ProductFilterInput()
        if f.include_inactive and ctx.role is not Role.MERCHANT:
            raise user_error("filter.includeInactive needs a merchant key", ErrorCode.FORBIDDEN)
        title = f.title_contains.strip() if f.title_contains is not None else None
        if title is not None and ctx.role is not Role.MERCHANT:
            raise user_error("filter.titleContains needs a merchant key", ErrorCode.FORBIDDEN)
        if title is not None and not 1 <= len(title) <= MAX_TITLE_SEARCH:
            raise bad_input(f"filter.titleContains must be 1 to {MAX_TITLE_SEARCH} characters")
        if (f.min_price is not None or f.max_price is not None) and not f.currency:
            raise bad_input("filter.currency is required with minPrice or maxPrice")
        flt = catalog.ProductFilter(
            ids=tuple(str(i) for i in f.ids) if f.ids is not None else None,
            category_path=tuple(f.category_path) if f.category_path else None,
            brands=tuple(f.brands) if f.brands is not None else None,
            min_price=f.min_price,
            max_price=f.max_price,
            currency=f.currency,
            in_stock=f.in_stock,
            include_inactive=f.include_inactive,
            title_contains=title,
        )
        try:
            snapshot = ctx.runtime.catalog
            if snapshot is None:
                page = await catalog.list_products(ctx.runtime.store, flt, first, after)
            else:
                page = snapshot.page(flt, first, after)
        except catalog.CursorError as exc:
            raise bad_input(str(exc)) from None
        edges = [Edge(cursor=catalog.encode_cursor(p.id), node=Product.of(p)) for p in page.items]
        return Connection(
            nodes=[e.node for e in edges],
            edges=edges,
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )


@strawberry.type
class CatalogMutation:
    @merchant_mutation(
        description="Create or replace products (up to the batch limit); a result per item, "
        "valid items kept when others are rejected."
    )
    async def upsert_products(
        self, info: Info[Context, Any], input: UpsertProductsInput
    ) -> list[ProductUpsertResult]:
        products = input.products
        ctx = info.context
        limit = ctx.runtime.settings.max_upsert_batch
        if len(products) > limit:
            raise bad_input(f"products: {len(products)} items; at most {limit} per call")
        results = await catalog.upsert_products(ctx.runtime.store, [p.to_raw() for p in products])
        if ctx.runtime.catalog is not None:  # this instance's next answer shows the write
            await ctx.runtime.catalog.refresh([r.id for r in results if r.id is not None])
        await _index_new_products(ctx.runtime, [r.id for r in results if r.id and not r.reason])
        return [
            ProductUpsertResult(
                index=r.index, id=r.id, status=UpsertStatus(r.status.value), reason=r.reason
            )
            for r in results
        ]

    @merchant_mutation(description="Delete products by id; returns how many existed.")
    async def delete_products(
        self, info: Info[Context, Any], input: DeleteProductsInput
    ) -> DeleteProductsResult:
        ids = input.product_ids
        if len(ids) > info.context.runtime.settings.max_upsert_batch:
            raise bad_input("productIds: too many ids in one call")
        deleted = await catalog.delete_products(info.context.runtime.store, [str(i) for i in ids])
        if info.context.runtime.catalog is not None:
            await info.context.runtime.catalog.refresh([str(i) for i in ids])
        return DeleteProductsResult(deleted=deleted)


async def _index_new_products(runtime: Any, ids: Sequence[str]) -> None:
    """Strategies that index products without training (search, new for you) learn the
    upserted products now, on this instance (`shopfront.recommend.catalog_updates`)."""
    from shopfront.extend.records import StrategyKind
    from shopfront.recommend.catalog_updates import index_products

    host = runtime.plugins
    if host is None or not ids:
        return
    learners = [h.obj for h in host.strategies(StrategyKind.RECOMMENDER) if h.obj is not None]
    if learners:
        index_products(learners, list((await catalog.get_products(runtime.store, ids)).values()))
