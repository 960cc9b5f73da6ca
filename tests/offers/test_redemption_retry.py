"""Redemption is one multi-document transaction that the driver retries on transient errors
(`Store.in_transaction` runs it through ``with_transaction``): a write the server fails inside
the transaction with a TransientTransactionError label, as a conflict or a shard's primary
stepping down would, is retried, and the code is still redeemed exactly once, with the budget
counted once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from shopfront.offers.campaigns import fingerprint
from shopfront.offers.coupon_service import CouponService
from shopfront.offers.redemption import RedeemRequest
from shopfront.platform.config import Settings
from shopfront.platform.money import Money
from shopfront.platform.store import Store

FailPoint = Callable[[list[str], str], Awaitable[None]]
WRITES = ["insert", "update", "findAndModify"]


@pytest.fixture
async def fail_once(store: Store) -> AsyncIterator[FailPoint]:
    """Arm the server to fail the next of ``commands`` once, with the given error label."""

    async def arm(commands: list[str], label: str) -> None:
        await store.client.admin.command(
            "configureFailPoint",
            "failCommand",
            mode={"times": 1},
            data={"failCommands": commands, "errorCode": 112, "errorLabels": [label]},
        )

    yield arm
    await store.client.admin.command("configureFailPoint", "failCommand", mode="off")


async def single_use_code(coupons: CouponService) -> str:
    await coupons.create_campaign(
        {
            "id": "once",
            "title": "Once",
            "currency": "EUR",
            "discount": {"kind": "fixed", "amount": {"amount": 500, "currency": "EUR"}},
            "budget": {"amount": 800, "currency": "EUR"},  # room for one 5.00 discount
        }
    )
    await coupons.generate_codes("once", 1)
    [code] = [c.code async for c in coupons.export_codes("once")]
    return code


async def test_a_transient_failure_is_retried_and_redeems_exactly_once(
    store: Store, settings: Settings, fail_once: FailPoint
) -> None:
    coupons = CouponService(store, settings)
    code = await single_use_code(coupons)
    # A write conflict inside the transaction (another shard's writer got there first).
    await fail_once(WRITES, "TransientTransactionError")
    request = RedeemRequest(code, "u1", "o1", "k1", fingerprint("o1"))
    result = await coupons.redeem(request, Money(500, "EUR"))  # the discount it charges
    assert result.ok and result.redemption is not None
    assert await store.collection("coupon_redemptions").count_documents({"code": code}) == 1
    campaign = await coupons.get_campaign("once")
    assert campaign is not None and campaign.used == 1 and campaign.discount_given == 500
    # 3.00 of the budget is left: a second 5.00 discount is refused, never charged twice.
    again: Any = await coupons.redeem(
        RedeemRequest(code, "u2", "o2", "k2", fingerprint("o2")), Money(500, "EUR")
    )
    assert not again.ok


async def test_the_transaction_runs_again_after_a_transient_error(
    store: Store, fail_once: FailPoint
) -> None:
    calls = 0

    async def work(session: Any) -> None:
        nonlocal calls
        calls += 1
        await store.collection("counters").update_one(
            {"_id": "c"}, {"$inc": {"n": 1}}, upsert=True, session=session
        )

    await fail_once(WRITES, "TransientTransactionError")
    await store.in_transaction(work)
    assert calls == 2  # the failed attempt was aborted and run again
    doc = await store.collection("counters").find_one({"_id": "c"})
    assert doc is not None and doc["n"] == 1  # ... and counted once
