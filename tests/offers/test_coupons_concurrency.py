"""Redemptions under concurrency, against the real wire server: limits, per-shopper limits,
budgets and idempotency keys hold exactly, however many calls race."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from shopfront.offers.campaigns import (
    BUDGET_EXHAUSTED,
    PER_SHOPPER_LIMIT_REACHED,
    REDEMPTIONS,
    USAGE_LIMIT_REACHED,
    fingerprint,
)
from shopfront.offers.coupon_service import CouponService
from shopfront.offers.redemption import RedeemRequest, RedeemResult
from shopfront.platform.config import Settings
from shopfront.platform.money import Money
from shopfront.platform.store import Store, open_store

pytestmark = pytest.mark.concurrency

EUR = "EUR"


def campaign(cid: str, **terms: object) -> dict[str, object]:
    return {
        "id": cid,
        "title": f"Campaign {cid}",
        "currency": EUR,
        "discount": {"kind": "fixed", "amount": {"amount": 500, "currency": EUR}},
        **terms,
    }


def request(code: str, user: str, order: str, key: str, amount: int = 500) -> RedeemRequest:
    return RedeemRequest(code, user, order, key, fingerprint(code, user, order, amount))


async def redeem(
    service: CouponService, code: str, user: str, order: str, key: str, amount: int = 500
) -> RedeemResult:
    return await service.redeem(request(code, user, order, key, amount), Money(amount, EUR))


@pytest.fixture
async def coupons(store: Store, settings: Settings) -> CouponService:
    return CouponService(store, settings)


async def test_single_use_code_one_winner_among_1000_shoppers(coupons: CouponService) -> None:
    await coupons.create_campaign(campaign("single"))
    assert await coupons.generate_codes("single", 1) == 1
    [code] = [c.code async for c in coupons.export_codes("single")]
    results = await asyncio.gather(
        *(redeem(coupons, code, f"u{i}", f"o{i}", f"k{i}") for i in range(1000))
    )
    winners = [r for r in results if r.ok]
    assert len(winners) == 1
    refusals = Counter(r.refusal.code for r in results if r.refusal is not None)
    assert refusals == {USAGE_LIMIT_REACHED: 999}
    assert all(r.refusal.message for r in results if r.refusal is not None)
    stored = await coupons.get_campaign("single")
    assert stored is not None and stored.used == 1 and stored.discount_given == 500
    assert await coupons.store.collection(REDEMPTIONS).count_documents({}) == 1


async def test_limit_10_one_per_shopper_200_shoppers_5_tries(coupons: CouponService) -> None:
    await coupons.create_campaign(campaign("ten", usage_limit=10, per_shopper_limit=1))
    await coupons.add_shared_code("ten", "TENONLY")
    calls = [
        redeem(coupons, "TENONLY", f"u{i}", f"o{i}-{t}", f"k{i}-{t}")
        for t in range(5)
        for i in range(200)
    ]
    results = await asyncio.gather(*calls)
    winners = [r.redemption for r in results if r.redemption is not None]
    assert len(winners) == 10
    assert len({w.user_id for w in winners}) == 10  # nobody twice
    refusals = Counter(r.refusal.code for r in results if r.refusal is not None)
    assert set(refusals) <= {USAGE_LIMIT_REACHED, PER_SHOPPER_LIMIT_REACHED}
    assert sum(refusals.values()) == 990
    stored = await coupons.get_campaign("ten")
    assert stored is not None and stored.used == 10
    assert await coupons.store.collection(REDEMPTIONS).count_documents({}) == 10


async def test_budget_cap_never_exceeded(coupons: CouponService) -> None:
    await coupons.create_campaign(campaign("budget", budget={"amount": 10_000, "currency": EUR}))
    await coupons.add_shared_code("budget", "BUDGET")
    amounts = [300 + (i * 37) % 500 for i in range(150)]
    results = await asyncio.gather(
        *(
            redeem(coupons, "BUDGET", f"u{i}", f"o{i}", f"k{i}", amount)
            for i, amount in enumerate(amounts)
        )
    )
    given = sum(r.redemption.amount.amount for r in results if r.redemption is not None)
    stored = await coupons.get_campaign("budget")
    assert stored is not None
    assert given == stored.discount_given <= 10_000
    assert 10_000 - given < max(amounts)  # it stopped because the budget ran out
    assert {r.refusal.code for r in results if r.refusal} == {BUDGET_EXHAUSTED}


async def test_one_idempotency_key_100_concurrent_calls_execute_once(
    coupons: CouponService,
) -> None:
    await coupons.create_campaign(campaign("idem"))
    await coupons.add_shared_code("idem", "ONCE")
    results = await asyncio.gather(
        *(redeem(coupons, "ONCE", "u1", "o1", "key") for _ in range(100))
    )
    assert all(r.ok for r in results)
    assert len({r.redemption.id for r in results if r.redemption}) == 1
    assert sum(not r.replayed for r in results) == 1
    stored = await coupons.get_campaign("idem")
    assert stored is not None and stored.used == 1
    assert await coupons.store.collection(REDEMPTIONS).count_documents({}) == 1


@pytest.fixture
async def second_instance(settings: Settings, store: Store) -> AsyncIterator[CouponService]:
    """Another service instance with its own client: what a second process would be."""
    other = await open_store(settings, settings.mongodb_uri)
    try:
        yield CouponService(other, settings)
    finally:
        await other.close()


async def test_limits_hold_across_instances(
    coupons: CouponService, second_instance: CouponService
) -> None:
    await coupons.create_campaign(campaign("multi", usage_limit=5, per_shopper_limit=1))
    await coupons.add_shared_code("multi", "MULTI")
    calls = [
        redeem(instance, "MULTI", f"u{i % 20}", f"o{i}", f"k{i}")
        for i in range(60)
        for instance in (coupons, second_instance)
    ]
    results = await asyncio.gather(*calls)
    # Each key is sent by both instances: a key's two calls share one result.
    winners = {r.redemption.id: r.redemption for r in results if r.redemption is not None}
    assert len(winners) == 5
    assert len({w.user_id for w in winners.values()}) == 5
    for i in range(60):
        first, second = results[2 * i], results[2 * i + 1]
        assert first.to_doc() == second.to_doc()
    stored = await coupons.get_campaign("multi")
    assert stored is not None and stored.used == 5


@pytest.fixture
async def pymongo_coupons(mongo_uri: str) -> AsyncIterator[CouponService]:
    from shopfront.testing import test_settings

    settings = test_settings(mongo_uri, mongo_driver="pymongo")
    store = await open_store(settings, mongo_uri)
    try:
        yield CouponService(store, settings)
    finally:
        await store.drop_database()
        await store.close()


async def test_limits_hold_with_the_pymongo_driver(pymongo_coupons: CouponService) -> None:
    coupons = pymongo_coupons
    await coupons.create_campaign(
        campaign("py", usage_limit=3, per_shopper_limit=1, budget={"amount": 1200, "currency": EUR})
    )
    await coupons.add_shared_code("py", "PYDRIVER")
    results = await asyncio.gather(
        *(redeem(coupons, "PYDRIVER", f"u{i % 50}", f"o{i}", f"k{i}", 400) for i in range(200))
    )
    winners = [r.redemption for r in results if r.redemption is not None]
    assert len(winners) == 3 and len({w.user_id for w in winners}) == 3
    stored = await coupons.get_campaign("py")
    assert stored is not None and stored.used == 3 and stored.discount_given == 1200
    exported = [c.code async for c in coupons.export_codes("py")]
    assert exported == ["PYDRIVER"]
