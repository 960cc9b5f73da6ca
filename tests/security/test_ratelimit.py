"""Rate limits: token buckets per key and per client address."""

from __future__ import annotations

import pytest
from shopfront.platform.keys import Role, create_key
from shopfront.platform.ratelimit import Budget, RateLimited, RateLimiter, TokenBuckets

from tests.security.conftest import ServiceFactory

pytestmark = pytest.mark.security

QUERY = "{ products(first: 1) { nodes { id } } }"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(Budget(rate_per_s=2.0, burst=3), clock=clock)
    assert [buckets.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = buckets.take("k")
    assert wait == pytest.approx(0.5)  # one token at 2/s
    clock.now += 0.25
    assert buckets.take("k") == pytest.approx(0.25)  # refused takes nothing
    clock.now += 0.25
    assert buckets.take("k") == 0.0
    clock.now += 100
    assert [buckets.take("k") for _ in range(4)][-1] > 0  # refilled only up to the burst


def test_buckets_are_independent_and_bounded() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(Budget(1.0, 1), clock=clock, max_buckets=2)
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    assert buckets.take("b") == 0.0  # another key is unaffected
    buckets.take("c")
    assert len(buckets) == 2  # the least recently used bucket ("a") was dropped


def test_batch_cost_and_oversized_batches() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(Budget(1.0, 5), clock=clock)
    assert buckets.take("k", 4) == 0.0
    assert buckets.take("k", 4) == pytest.approx(3.0)  # 1 left, 3 more needed at 1/s
    clock.now += 10
    assert buckets.take("k", 20) == 0.0  # larger than the burst: admitted when full ...
    assert buckets.take("k", 1) == pytest.approx(16.0)  # ... and paid for afterwards


def test_zero_rate_is_unlimited_and_disabled_limiter_never_refuses() -> None:
    buckets = TokenBuckets(Budget(0, 1))
    assert all(buckets.take("k") == 0.0 for _ in range(100))
    off = RateLimiter(
        enabled=False, address=Budget(1, 1), storefront=Budget(1, 1), merchant=Budget(1, 1)
    )
    for _ in range(10):
        off.check_address("1.2.3.4")
        off.check_key("k", Role.MERCHANT)


def test_rate_limited_rounds_retry_after_up() -> None:
    assert RateLimited("merchant", 0.01).retry_after_header == 1
    assert RateLimited("merchant", 2.2).retry_after_header == 3


async def test_key_over_budget_gets_429_and_other_keys_are_unaffected(
    service_with: ServiceFactory,
) -> None:
    async with service_with(
        rate_limit_storefront_per_s=0.5,
        rate_limit_storefront_burst=2,
        rate_limit_merchant_per_s=0.5,
        rate_limit_merchant_burst=3,
    ) as svc:
        for _ in range(2):
            assert (await svc.post(QUERY, key=svc.storefront)).status_code == 200
        resp = await svc.post(QUERY, key=svc.storefront)
        assert resp.status_code == 429
        assert resp.headers["retry-after"] == "2"
        body = resp.json()
        assert body["data"] is None
        error = body["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["retryAfter"] == 2
        assert "storefront key" in error["message"]
        # Another storefront key has its own bucket; merchant keys have their own budget.
        _, other = await create_key(svc.store, Role.STOREFRONT, "other-shop")
        assert (await svc.post(QUERY, key=other)).status_code == 200
        for _ in range(3):
            assert (await svc.post(QUERY, key=svc.merchant)).status_code == 200
        assert (await svc.post(QUERY, key=svc.merchant)).status_code == 429


async def test_address_over_budget_is_refused_before_the_key_lookup(
    service_with: ServiceFactory,
) -> None:
    async with service_with(rate_limit_address_per_s=0.1, rate_limit_address_burst=3) as svc:
        for _ in range(3):
            assert (await svc.post(QUERY, key="sf_merchant_made-up")).status_code == 200
        finds = await svc.db_commands("find")
        resp = await svc.post(QUERY, key="sf_merchant_made-up")
        assert resp.status_code == 429
        assert int(resp.headers["retry-after"]) >= 1
        assert resp.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert "client address" in resp.json()["errors"][0]["message"]
        assert await svc.db_commands("find") == finds  # no key lookup for a refused address


async def test_a_batch_costs_one_token_per_operation(service_with: ServiceFactory) -> None:
    async with service_with(rate_limit_merchant_per_s=0.1, rate_limit_merchant_burst=3) as svc:
        headers = {"authorization": f"Bearer {svc.merchant}"}
        resp = await svc.client.post("/graphql", json=[{"query": QUERY}] * 3, headers=headers)
        assert resp.status_code == 200
        resp = await svc.client.post("/graphql", json=[{"query": QUERY}], headers=headers)
        assert resp.status_code == 429
        assert resp.json()[0]["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_rate_limits_can_be_switched_off(service_with: ServiceFactory) -> None:
    async with service_with(
        rate_limit_enabled=False, rate_limit_merchant_per_s=0.1, rate_limit_merchant_burst=1
    ) as svc:
        for _ in range(3):
            assert (await svc.post(QUERY, key=svc.merchant)).status_code == 200
