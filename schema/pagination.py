"""Connections: the one shape of every list that can grow (docs/graphql.md, "Lists").

A list field takes ``first`` (1 to ``SHOPFRONT_MAX_PAGE_SIZE``, default `DEFAULT_FIRST`) and
``after`` (an ``endCursor`` or edge ``cursor`` it returned) and answers a `Connection`:
``nodes`` for clients that only page forward, ``edges { cursor node }`` for those that resume
from an item, and ``pageInfo``. Pages are keyset pages (the next one starts after the last
item's sort key), never skip/offset, so a page costs the same deep in a long list.

Cursors are opaque to clients: base64 of the list's name and the item's sort key, so a cursor
from one list is refused by another with a clear error.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Generic, TypeVar

import strawberry
from shopfront.schema.errors import user_error
from shopfront.schema.types import PageInfo

DEFAULT_FIRST = 20

T = TypeVar("T")
S = TypeVar("S")

Key = tuple[str, ...]


@strawberry.type(description="One item of a page and the cursor that resumes after it.")
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(
    description="A page of a list: its items (as nodes and as edges) and where it ends."
)
class Connection(Generic[T]):
    nodes: list[T]
    edges: list[Edge[T]]
    page_info: PageInfo


def check_first(first: int, cap: int) -> None:
    if not 1 <= first <= cap:
        raise user_error(f"first must be between 1 and {cap}, got {first}")


def encode_cursor(kind: str, key: Key) -> str:
    return base64.urlsafe_b64encode(json.dumps([kind, *key]).encode()).decode()


def decode_cursor(kind: str, cursor: str, size: int) -> Key:
    """The sort key inside ``cursor``, which must come from the list ``kind``."""
    invalid = user_error(f"after: {cursor[:40]!r} is not a cursor of this list")
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None
    if (
        not isinstance(raw, list)
        or len(raw) != size + 1
        or raw[0] != kind
        or not all(isinstance(part, str) for part in raw[1:])
    ):
        raise invalid
    return tuple(raw[1:])


def decode_time(kind: str, value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise user_error(f"after: not a cursor of the {kind} list") from None


def connection(
    items: Sequence[S], first: int, cursor: Callable[[S], str], node: Callable[[S], T]
) -> Connection[T]:
    """The page from ``items``, which holds up to ``first + 1`` of them: one past the page
    says that there is a next page."""
    edges = [Edge(cursor=cursor(item), node=node(item)) for item in items[:first]]
    return Connection(
        nodes=[e.node for e in edges],
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(items) > first, end_cursor=edges[-1].cursor if edges else None
        ),
    )
