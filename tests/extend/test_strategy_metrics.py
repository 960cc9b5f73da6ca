"""Strategy calls reach /metrics: the `plugins` query and the metrics tell the same story."""

from __future__ import annotations

import httpx
from shopfront.testing import GraphQLCall, ShopperTokenFactory

QUERY = """
query { storefront(input: {userId: "u1", page: HOME, cart: {lines: [], couponCodes: []}}) {
  requestId slots { name } degraded { strategy reason } } }
"""


async def test_strategy_calls_are_counted_in_metrics(
    graphql: GraphQLCall,
    storefront_key: str,
    client: httpx.AsyncClient,
    shopper_token: ShopperTokenFactory,
) -> None:
    res = await graphql(QUERY, key=storefront_key, token=shopper_token("u1"))
    assert "errors" not in res, res
    text = (await client.get("/metrics")).text
    calls = [
        line
        for line in text.splitlines()
        if line.startswith("shopfront_strategy_calls_total{") and 'strategy="trending"' in line
    ]
    assert calls and float(calls[0].rsplit(" ", 1)[1]) >= 1, calls
    assert 'shopfront_strategy_breaker_state{kind="recommender",strategy="trending"} 0.0' in text
