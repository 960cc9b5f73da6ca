"""GraphQL types shared across the schema: money, products and their inputs."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from shopfront.catalog.products import Product as ProductModel
from shopfront.platform.money import Money as MoneyModel
from shopfront.schema.scalars import Long


@strawberry.type(description="An amount in integer minor units (cents) with its ISO 4217 currency.")
class Money:
    amount: Long
    currency: str

    @classmethod
    def of(cls, m: MoneyModel) -> Money:
        return cls(amount=Long(m.amount), currency=m.currency)


@strawberry.input(
    description="An amount in integer minor units (cents) with its ISO 4217 currency."
)
class MoneyInput:
    amount: Long
    currency: str


@strawberry.enum(description="The kind of storefront page a request or an event comes from.")
class PageType(Enum):
    HOME = "HOME"
    PRODUCT = "PRODUCT"
    CATEGORY = "CATEGORY"
    CART = "CART"
    SEARCH = "SEARCH"
    CHECKOUT = "CHECKOUT"


@strawberry.type
class Attribute:
    key: str
    value: str


@strawberry.input
class AttributeInput:
    key: str
    value: str


@strawberry.type(description="A product of the catalog.")
class Product:
    id: strawberry.ID
    title: str
    description: str
    category_path: list[str]
    brand: str
    tags: list[str]
    price: Money
    stock: int
    in_stock: bool
    active: bool
    image_url: str
    attributes: list[Attribute]
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, p: ProductModel) -> Product:
        return cls(
            id=strawberry.ID(p.id),
            title=p.title,
            description=p.description,
            category_path=list(p.category_path),
            brand=p.brand,
            tags=list(p.tags),
            price=Money.of(p.price),
            stock=p.stock,
            in_stock=p.in_stock,
            active=p.active,
            image_url=p.image_url,
            attributes=[Attribute(key=k, value=v) for k, v in sorted(p.attributes.items())],
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


@strawberry.input(description="A product to create or replace, keyed by the merchant's own id.")
class ProductInput:
    id: strawberry.ID
    title: str
    price: MoneyInput
    description: str = ""
    category_path: list[str] = strawberry.field(default_factory=list)
    brand: str = ""
    tags: list[str] = strawberry.field(default_factory=list)
    stock: int = 0
    active: bool = True
    image_url: str = ""
    attributes: list[AttributeInput] = strawberry.field(default_factory=list)

    def to_raw(self) -> dict[str, object]:
        attrs: dict[str, str] = {}
        for a in self.attributes:
            attrs[a.key] = a.value
        return {
            "id": str(self.id),
            "title": self.title,
            "price": {"amount": self.price.amount, "currency": self.price.currency},
            "description": self.description,
            "category_path": list(self.category_path),
            "brand": self.brand,
            "tags": list(self.tags),
            "stock": self.stock,
            "active": self.active,
            "image_url": self.image_url,
            "attributes": attrs,
        }


@strawberry.input(description="Catalog filter; every field narrows the result.")
class ProductFilterInput:
    ids: list[strawberry.ID] | None = None
    category_path: list[str] | None = strawberry.field(
        default=None, description='Category path prefix, e.g. ["Shoes", "Running"].'
    )
    brands: list[str] | None = None
    min_price: Long | None = None
    max_price: Long | None = None
    currency: str | None = None
    in_stock: bool | None = None
    include_inactive: bool = strawberry.field(
        default=False, description="Merchant keys only: also list inactive products."
    )
    title_contains: str | None = strawberry.field(
        default=None,
        description="Merchant keys only: titles containing this text, ignoring case.",
    )


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class ProductConnection:
    nodes: list[Product]
    page_info: PageInfo


@strawberry.enum
class UpsertStatus(Enum):
    CREATED = "created"
    UPDATED = "updated"
    REJECTED = "rejected"


@strawberry.type(description="What happened to one item of an upsertProducts call.")
class ProductUpsertResult:
    index: int
    id: str | None
    status: UpsertStatus
    reason: str | None


@strawberry.type
class DeleteProductsResult:
    deleted: int
