"""The product catalog: validation, batched upserts, deletes and typed, paginated queries.

Every client-facing filter is a typed `ProductFilter` mapped here to an allow-listed MongoDB
query; no client value is ever used as a query operator or a raw regular expression.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from shopfront.platform.money import Money, MoneyError
from shopfront.platform.store import BulkWriteError, Store, UpdateOne

MAX_ID_LEN = 200
MAX_TITLE_LEN = 500
MAX_DESCRIPTION_LEN = 20_000
MAX_TAGS = 100
MAX_ATTRIBUTES = 100
MAX_CATEGORY_DEPTH = 10
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ProductError(ValueError):
    """A product failed validation; the message names the field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class Product:
    """A catalog product as strategies see it (read-only; ``upsert_products`` writes them)."""

    id: str  # the merchant's product id (SKU)
    title: str  # shown to shoppers
    price: Money  # integer minor units and ISO currency
    description: str = ""
    category_path: tuple[str, ...] = ()  # ("Shoes", "Running"), most general first
    brand: str = ""
    tags: tuple[str, ...] = ()
    stock: int = 0  # units available; 0: out of stock
    active: bool = True  # False: never served
    image_url: str = ""
    # Free-form key -> value (size, colour, ...).
    attributes: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def in_stock(self) -> bool:
        return self.stock > 0

    def to_doc(self) -> dict[str, Any]:
        """The stored fields a client sets (timestamps are the store's)."""
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "category_path": list(self.category_path),
            "brand": self.brand,
            "tags": list(self.tags),
            "price": self.price.to_doc(),
            "stock": self.stock,
            "active": self.active,
            "image_url": self.image_url,
            "attributes": dict(self.attributes),
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Product:
        return cls(
            id=doc["id"],
            title=doc["title"],
            price=Money.from_doc(doc["price"]),
            description=doc.get("description", ""),
            category_path=tuple(doc.get("category_path", ())),
            brand=doc.get("brand", ""),
            tags=tuple(doc.get("tags", ())),
            stock=doc.get("stock", 0),
            active=doc.get("active", True),
            image_url=doc.get("image_url", ""),
            attributes=dict(doc.get("attributes", {})),
            created_at=doc.get("created_at"),
            updated_at=doc.get("updated_at"),
        )


def _text(raw: Mapping[str, Any], name: str, *, required: bool, max_len: int) -> str:
    value = raw.get(name)
    if value is None or value == "":
        if required:
            raise ProductError(name, "is required")
        return ""
    if not isinstance(value, str):
        raise ProductError(name, f"must be a string, got {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise ProductError(name, "must not be blank")
    if len(value) > max_len:
        raise ProductError(name, f"is longer than {max_len} characters")
    return value


def _safe_key(name: str, key: str) -> str:
    """Attribute keys become document keys, so they may not be operators or paths."""
    if not key or key.startswith("$") or "." in key or "\x00" in key:
        raise ProductError(name, f"key {key!r} must be non-empty, not start with '$', no '.'")
    if len(key) > 100:
        raise ProductError(name, f"key {key[:20]!r}... is longer than 100 characters")
    return key


def _strings(raw: Mapping[str, Any], name: str, limit: int) -> tuple[str, ...]:
    value = raw.get(name) or []
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ProductError(name, "must be a list of strings")
    items = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ProductError(name, f"entries must be non-empty strings, got {item!r}")
        if len(item) > 200:
            raise ProductError(name, "entries must be at most 200 characters")
        items.append(item.strip())
    if len(items) > limit:
        raise ProductError(name, f"has {len(items)} entries; at most {limit}")
    return tuple(items)


def _int(raw: Mapping[str, Any], name: str, default: int | None = None) -> int:
    value = raw.get(name, default)
    if value is None:
        raise ProductError(name, "is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProductError(name, f"must be a whole number, got {value!r}")
    return value


def validate_product(raw: Mapping[str, Any]) -> Product:
    """Build a `Product` from client data (GraphQL input or an import row), or raise."""
    pid = _text(raw, "id", required=True, max_len=MAX_ID_LEN)
    if _CONTROL.search(pid):
        raise ProductError("id", "must not contain control characters")
    price_raw = raw.get("price")
    if not isinstance(price_raw, Mapping):
        raise ProductError("price", "is required (amount in minor units and currency)")
    amount = price_raw.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ProductError(
            "price.amount", f"must be whole minor units (e.g. cents), got {amount!r}"
        )
    if amount < 0:
        raise ProductError("price.amount", f"must not be negative, got {amount}")
    try:
        price = Money(amount, str(price_raw.get("currency", "")).strip().upper())
    except MoneyError as exc:
        raise ProductError("price.currency", str(exc)) from None
    stock = _int(raw, "stock", 0)
    if stock < 0:
        raise ProductError("stock", f"must not be negative, got {stock}")
    active = raw.get("active", True)
    if not isinstance(active, bool):
        raise ProductError("active", "must be true or false")
    image_url = _text(raw, "image_url", required=False, max_len=2000)
    if image_url and not image_url.startswith(("https://", "http://", "/")):
        raise ProductError("image_url", "must be an http(s) URL or an absolute path")
    attrs_raw = raw.get("attributes") or {}
    if not isinstance(attrs_raw, Mapping):
        raise ProductError("attributes", "must be a map of string to string")
    if len(attrs_raw) > MAX_ATTRIBUTES:
        raise ProductError("attributes", f"has {len(attrs_raw)} entries; at most {MAX_ATTRIBUTES}")
    attributes: dict[str, str] = {}
    for key, value in attrs_raw.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ProductError("attributes", f"{key!r}: keys and values must be strings")
        attributes[_safe_key("attributes", key.strip())] = value.strip()[:1000]
    return Product(
        id=pid,
        title=_text(raw, "title", required=True, max_len=MAX_TITLE_LEN),
        description=_text(raw, "description", required=False, max_len=MAX_DESCRIPTION_LEN),
        category_path=_strings(raw, "category_path", MAX_CATEGORY_DEPTH),
        brand=_text(raw, "brand", required=False, max_len=200),
        tags=_strings(raw, "tags", MAX_TAGS),
        price=price,
        stock=stock,
        active=active,
        image_url=image_url,
        attributes=attributes,
    )


class UpsertStatus(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    REJECTED = "rejected"


@dataclass(frozen=True)
class UpsertResult:
    index: int
    id: str | None
    status: UpsertStatus
    reason: str | None = None


async def upsert_products(store: Store, raws: Sequence[Mapping[str, Any]]) -> list[UpsertResult]:
    """Validate each product; write the valid ones in one unordered bulk write.

    A rejected item never costs the valid ones; an item the database refuses is reported
    as rejected with the database's reason, and the rest of the batch is still written.
    """
    results: list[UpsertResult | None] = [None] * len(raws)
    valid: list[tuple[int, Product]] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raws):
        rid = raw.get("id") if isinstance(raw.get("id"), str) else None
        try:
            product = validate_product(raw)
        except ProductError as exc:
            results[i] = UpsertResult(i, rid, UpsertStatus.REJECTED, str(exc))
            continue
        if product.id in seen:
            results[i] = UpsertResult(
                i,
                product.id,
                UpsertStatus.REJECTED,
                f"id: {product.id!r} appears twice in this batch "
                f"(first at item {seen[product.id]})",
            )
            continue
        seen[product.id] = i
        valid.append((i, product))
    if valid:
        now = datetime.now(UTC)
        ops = [
            UpdateOne(
                {"id": p.id},
                {"$set": {**p.to_doc(), "updated_at": now}, "$setOnInsert": {"created_at": now}},
                upsert=True,
            )
            for _, p in valid
        ]
        failed: dict[int, str] = {}
        upserted: set[int] = set()
        try:
            res = await store.products.bulk_write(ops, ordered=False)
            upserted = set(res.upserted_ids)
        except BulkWriteError as exc:
            details = exc.details
            upserted = {u["index"] for u in details.get("upserted", [])}
            failed = {e["index"]: e.get("errmsg", "write failed") for e in details["writeErrors"]}
        for op_index, (i, p) in enumerate(valid):
            if op_index in failed:
                results[i] = UpsertResult(i, p.id, UpsertStatus.REJECTED, failed[op_index])
            elif op_index in upserted:
                results[i] = UpsertResult(i, p.id, UpsertStatus.CREATED)
            else:
                results[i] = UpsertResult(i, p.id, UpsertStatus.UPDATED)
    return [r for r in results if r is not None]


async def delete_products(store: Store, ids: Sequence[str]) -> int:
    res = await store.products.delete_many({"id": {"$in": [str(i) for i in ids]}})
    return int(res.deleted_count)


async def get_product(
    store: Store, product_id: str, *, include_inactive: bool = False
) -> Product | None:
    query: dict[str, Any] = {"id": str(product_id)}
    if not include_inactive:
        query["active"] = True
    doc = await store.products.find_one(query, {"_id": 0})
    return Product.from_doc(doc) if doc else None


async def get_products(store: Store, ids: Sequence[str]) -> dict[str, Product]:
    """Products by id in one round trip (inactive ones included: callers decide)."""
    docs = await store.products.find({"id": {"$in": list(ids)}}, {"_id": 0}).to_list(None)
    return {d["id"]: Product.from_doc(d) for d in docs}


@dataclass(frozen=True)
class ProductFilter:
    """Typed catalog filter. Every field narrows the result; none can widen it."""

    ids: tuple[str, ...] | None = None
    category_path: tuple[str, ...] | None = None
    brands: tuple[str, ...] | None = None
    min_price: int | None = None
    max_price: int | None = None
    currency: str | None = None
    in_stock: bool | None = None
    include_inactive: bool = False
    # Case-insensitive substring of the title. Not served by an index: the merchant console
    # asks for it, bounded by the page size; the storefront never does.
    title_contains: str | None = None

    def to_query(self) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if not self.include_inactive:
            query["active"] = True
        if self.title_contains:
            query["title"] = {"$regex": re.escape(self.title_contains), "$options": "i"}
        if self.ids is not None:
            query["id"] = {"$in": [str(i) for i in self.ids]}
        if self.category_path:
            for depth, part in enumerate(self.category_path):
                query[f"category_path.{depth}"] = str(part)
        if self.brands is not None:
            query["brand"] = {"$in": [str(b) for b in self.brands]}
        price: dict[str, int] = {}
        if self.min_price is not None:
            price["$gte"] = int(self.min_price)
        if self.max_price is not None:
            price["$lte"] = int(self.max_price)
        if price:
            query["price.amount"] = price
        if self.currency is not None:
            query["price.currency"] = str(self.currency)
        if self.in_stock is True:
            query["stock"] = {"$gt": 0}
        elif self.in_stock is False:
            query["stock"] = {"$lte": 0}
        return query

    def matches(self, p: Product) -> bool:
        """`to_query` evaluated on one product (the in-memory catalog's filter)."""
        if not self.include_inactive and not p.active:
            return False
        if self.ids is not None and p.id not in self.ids:
            return False
        if self.title_contains and self.title_contains.casefold() not in p.title.casefold():
            return False
        if self.category_path and tuple(p.category_path[: len(self.category_path)]) != tuple(
            self.category_path
        ):
            return False
        if self.brands is not None and p.brand not in self.brands:
            return False
        if self.min_price is not None and p.price.amount < self.min_price:
            return False
        if self.max_price is not None and p.price.amount > self.max_price:
            return False
        if self.currency is not None and p.price.currency != self.currency:
            return False
        return self.in_stock is None or p.in_stock is self.in_stock


class CursorError(ValueError):
    """A pagination cursor was not one this service issued."""


def encode_cursor(product_id: str) -> str:
    return base64.urlsafe_b64encode(f"p:{product_id}".encode()).decode()


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorError(f"after: {cursor[:40]!r} is not a valid cursor") from None
    if not raw.startswith("p:"):
        raise CursorError(f"after: {cursor[:40]!r} is not a valid cursor")
    return raw[2:]


@dataclass(frozen=True)
class ProductPage:
    items: list[Product]
    has_next_page: bool
    end_cursor: str | None
    total_count: int | None = None


async def list_products(
    store: Store, flt: ProductFilter, first: int, after: str | None = None
) -> ProductPage:
    """One page of products in id order, keyset-paginated (no skip over the catalog)."""
    query = flt.to_query()
    if after is not None:
        last_id = decode_cursor(after)
        id_cond = query.get("id", {})
        query["id"] = {**id_cond, "$gt": last_id}
    docs = await store.products.find(query, {"_id": 0}).sort("id", 1).limit(first + 1).to_list(None)
    has_next = len(docs) > first
    items = [Product.from_doc(d) for d in docs[:first]]
    return ProductPage(items, has_next, encode_cursor(items[-1].id) if items else None)
