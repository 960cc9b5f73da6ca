"""No input returns another shopper's data: 100 shoppers, each with a history of their own,
asked for through the storefront with their own ids (and tokens) and with operator-laden,
pattern-like and path-like ids."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from shopfront.testing import GraphQLCall, ShopperTokenFactory

pytestmark = pytest.mark.security

SHOPPERS = [f"u{i:03d}" for i in range(100)]

UPSERT = "mutation($p: [ProductInput!]!) { upsertProducts(input: {products: $p}) { status } }"
TRACK = "mutation($e: [EventInput!]!) { trackEvents(input: {events: $e}) { accepted rejected } }"
STOREFRONT = """
query($u: ID!) {
  storefront(input: {userId: $u, page: HOME, cart: {lines: [], couponCodes: []},
                     slots: [{name: "recently_viewed", strategy: "recently_viewed", limit: 10}]}) {
    slots { items { product { id } } }
  }
}
"""
HOSTILE_IDS = [
    '{"$ne": null}',
    "$where",
    ".*",
    "u0.*",
    "u000' || '1'=='1",
    "u000.recently_viewed",
    "u000\x00",
    "U000",
]


def viewed(body: dict[str, Any]) -> set[str]:
    slots = body["data"]["storefront"]["slots"] if body.get("data") else []
    return {item["product"]["id"] for slot in slots for item in slot["items"]}


async def test_no_input_returns_another_shoppers_data(
    graphql: GraphQLCall, storefront_key: str, shopper_token: ShopperTokenFactory
) -> None:
    products = [
        {
            "id": f"p{i:03d}",
            "title": f"Product {i}",
            "price": {"amount": 100, "currency": "EUR"},
            "stock": 5,
        }
        for i in range(100)
    ]
    assert "errors" not in await graphql(UPSERT, {"p": products})
    now = datetime.now(UTC).isoformat()
    events = [
        {
            "eventId": f"e-{user}",
            "type": "VIEW",
            "userId": user,
            "timestamp": now,
            "productId": f"p{i:03d}",
        }
        for i, user in enumerate(SHOPPERS)
    ]
    tracked = await graphql(TRACK, {"e": events})  # the merchant's backend, for everyone
    assert tracked["data"]["trackEvents"] == {"accepted": 100, "rejected": 0}, tracked

    for i, user in enumerate(SHOPPERS):
        body = await graphql(STOREFRONT, {"u": user}, key=storefront_key, token=shopper_token(user))
        assert "errors" not in body, body
        assert viewed(body) == {f"p{i:03d}"}, (user, viewed(body))

    # Hostile ids with a storefront key: refused outright, with or without a shopper's token.
    u000 = shopper_token("u000")
    for hostile in HOSTILE_IDS:
        for token, code in ((None, "UNAUTHENTICATED"), (u000, "FORBIDDEN")):
            body = await graphql(STOREFRONT, {"u": hostile}, key=storefront_key, token=token)
            assert viewed(body) == set(), (hostile, body)
            assert body["errors"][0]["extensions"]["code"] == code, (hostile, body)
        # The merchant key may name anyone: a hostile id still matches nobody.
        body = await graphql(STOREFRONT, {"u": hostile})
        assert viewed(body) == set(), (hostile, body)
