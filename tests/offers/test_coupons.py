"""Coupon campaigns, codes, validation against carts, personal codes, release and erasure."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shopfront.offers.campaigns import CouponError, fingerprint
from shopfront.offers.contract import PricedCart
from shopfront.offers.coupon_promotion import coupon_outcome
from shopfront.offers.coupon_service import CouponService
from shopfront.offers.pricing import CartPricer
from shopfront.offers.redemption import RedeemRequest, Refusal
from shopfront.platform.config import Settings
from shopfront.platform.money import Money
from shopfront.platform.store import Store
from shopfront.plugins.promotions import promotion_stacking
from shopfront.shoppers import privacy
from shopfront.shoppers.context import RequestContext
from shopfront.shoppers.profile_view import Profile

from tests.plugins.promotions.kit import context, eur, lines_of, product

SHOE = product("shoe", 6000, ("Shoes", "Trail"))
SOCK = product("sock", 1200, ("Socks",))
PRODUCTS = {p.id: p for p in (SHOE, SOCK)}


@pytest.fixture
async def coupons(store: Store, settings: Settings) -> CouponService:
    return CouponService(store, settings)


def terms(cid: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": cid,
        "title": cid.title(),
        "currency": "EUR",
        "discount": {"kind": "percent", "percent": "10"},
        **extra,
    }


async def priced(
    coupons: CouponService, codes: list[str], *items: tuple[str, int], **ctx: Any
) -> PricedCart:
    async def none(ctx: RequestContext) -> list[Any]:
        return []

    pricer = CartPricer(
        promotions=none,
        stacking=promotion_stacking,
        coupons=coupons.resolve,
        shipping_fees={"EUR": Money(495, "EUR")},
    )
    request = replace(context(PRODUCTS, **ctx), coupon_codes=tuple(codes))
    return await pricer.price(request, lines_of(*items), PRODUCTS)


async def outcome(coupons: CouponService, code: str, *items: tuple[str, int], **ctx: Any) -> Any:
    return coupon_outcome(await priced(coupons, [code], *items, **ctx), code)


async def test_each_discount_kind(coupons: CouponService) -> None:
    await coupons.create_campaign(
        terms("pct", discount={"kind": "percent", "percent": "50", "max_amount": eur(2000)})
    )
    await coupons.create_campaign(terms("fix", discount={"kind": "fixed", "amount": eur(9000)}))
    await coupons.create_campaign(terms("ship", discount={"kind": "free_shipping"}))
    await coupons.create_campaign(
        terms("gift", discount={"kind": "free_product", "product_id": "sock"})
    )
    for cid in ("pct", "fix", "ship", "gift"):
        await coupons.add_shared_code(cid, cid.upper())
    assert await outcome(coupons, "PCT", ("shoe", 1)) == Money(2000, "EUR")  # capped
    assert await outcome(coupons, "FIX", ("shoe", 1)) == Money(6000, "EUR")  # the whole cart
    assert await outcome(coupons, "SHIP", ("shoe", 1)) == Money(495, "EUR")
    gift = await outcome(coupons, "GIFT", ("shoe", 1), ("sock", 2))
    assert gift == Money(1200, "EUR")  # one unit free
    missing = await outcome(coupons, "GIFT", ("shoe", 1))
    assert isinstance(missing, Refusal) and missing.code == "NOT_ELIGIBLE"


async def test_refusals_before_pricing(coupons: CouponService) -> None:
    await coupons.create_campaign(terms("paused", active=False))
    await coupons.create_campaign(terms("mine", per_shopper_limit=1))
    await coupons.create_campaign(terms("qty", min_quantity=3))
    await coupons.create_campaign(terms("usd", currency="USD"))
    for cid in ("paused", "mine", "qty", "usd"):
        await coupons.add_shared_code(cid, cid.upper() + "1")
    code = await coupons.mint_personal_code("mine", "alice", "welcome", "first", None)

    async def why(code: str, **ctx: Any) -> str:
        result = await outcome(coupons, code, ("shoe", 1), **ctx)
        assert isinstance(result, Refusal) and result.message
        return result.code

    assert await why("PAUSED1") == "INACTIVE"
    assert await why("MINE1") == "NOT_ELIGIBLE"  # a per-shopper limit needs a signed-in shopper
    assert await why(code.code, user_id="bob") == "NOT_ELIGIBLE"  # alice's personal code
    assert isinstance(await outcome(coupons, code.code, ("shoe", 1), user_id="alice"), Money)
    assert await why("QTY1") == "MIN_QUANTITY_NOT_MET"
    assert await why("USD1") == "NOT_ELIGIBLE"
    cart = await priced(coupons, [f"X{i}CODE" for i in range(7)], ("shoe", 1))
    assert [n.code for n in cart.not_applied].count("TOO_MANY_CODES") == 2


async def test_segment_conditions_use_the_profile(coupons: CouponService) -> None:
    fans = {"category_affinity": {"category": "Shoes > Trail", "min_ratio": 0.5}}
    await coupons.create_campaign(terms("fans", segment=fans))
    await coupons.add_shared_code("fans", "FANS")
    now = datetime.now(UTC)
    fan = Profile("u1", now, category_affinities=(("Shoes", 4.0), ("Shoes > Trail", 3.0)))
    other = Profile("u2", now, category_affinities=(("Bags", 5.0), ("Shoes > Trail", 1.0)))
    assert isinstance(await outcome(coupons, "FANS", ("shoe", 1), profile=fan), Money)
    refused = await outcome(coupons, "FANS", ("shoe", 1), profile=other)
    assert isinstance(refused, Refusal) and refused.code == "NOT_ELIGIBLE"
    assert "Shoes > Trail" in refused.message
    no_consent = await outcome(coupons, "FANS", ("shoe", 1), profile=fan, personalized=False)
    assert isinstance(no_consent, Refusal)


async def test_two_codes_do_not_stack(coupons: CouponService) -> None:
    await coupons.create_campaign(terms("ten"))
    await coupons.create_campaign(terms("twenty", discount={"kind": "percent", "percent": "20"}))
    await coupons.add_shared_code("ten", "TEN")
    await coupons.add_shared_code("twenty", "TWENTY")
    cart = await priced(coupons, ["TEN", "TWENTY"], ("shoe", 1))
    assert [a.name for a in cart.applied] == ["coupon:TWENTY"]
    assert cart.not_applied[0].code == "DOES_NOT_COMBINE"
    assert cart.not_applied[0].conflicts == ("coupon:TWENTY",)


async def test_update_keeps_counters_and_validates(coupons: CouponService) -> None:
    await coupons.create_campaign(terms("c"))
    await coupons.add_shared_code("c", "CCODE")
    request = RedeemRequest("CCODE", "u1", "o1", "k1", fingerprint("k1"))
    assert (await coupons.redeem(request, Money(100, "EUR"))).ok
    updated = await coupons.update_campaign("c", terms("c", title="Renamed", usage_limit=5))
    assert updated.title == "Renamed" and updated.used == 1 and updated.discount_given == 100
    with pytest.raises(CouponError, match="ends_at"):
        now = datetime.now(UTC)
        await coupons.update_campaign("c", terms("c", starts_at=now, ends_at=now))
    with pytest.raises(CouponError, match="no campaign"):
        await coupons.update_campaign("nope", terms("nope"))
    with pytest.raises(CouponError, match="code"):
        await coupons.add_shared_code("c", "x!")


async def test_personal_codes_are_minted_once_per_period(coupons: CouponService) -> None:
    await coupons.create_campaign(terms("auto"))
    expires = datetime.now(UTC) + timedelta(days=7)
    minted = await asyncio.gather(
        *(coupons.mint_personal_code("auto", "u1", "welcome", "first", expires) for _ in range(20))
    )
    assert len({m.code for m in minted}) == 1
    other = await coupons.mint_personal_code("auto", "u2", "welcome", "first", expires)
    later = await coupons.mint_personal_code("auto", "u1", "welcome", "second", expires)
    assert len({minted[0].code, other.code, later.code}) == 3
    assert minted[0].user_id == "u1" and minted[0].max_uses == 1


async def test_release_frees_a_single_use_code_and_the_shopper_limit(
    coupons: CouponService,
) -> None:
    await coupons.create_campaign(terms("one", per_shopper_limit=1))
    await coupons.generate_codes("one", 1)
    [code] = [c.code async for c in coupons.export_codes("one")]

    def request(order: str) -> RedeemRequest:
        return RedeemRequest(code, "u1", order, f"key-{order}", fingerprint(order))

    assert (await coupons.redeem(request("o1"), Money(300, "EUR"))).ok
    assert (await coupons.redeem(request("o2"), Money(300, "EUR"))).refusal is not None
    released = await coupons.release("o1")
    assert [r.status for r in released.released] == ["released"]
    assert (await coupons.release("o1")).released == ()
    assert (await coupons.redeem(request("o3"), Money(300, "EUR"))).ok
    campaign = await coupons.get_campaign("one")
    assert campaign is not None and campaign.used == 1 and campaign.discount_given == 300


async def test_the_same_order_cannot_redeem_a_campaign_twice(coupons: CouponService) -> None:
    await coupons.create_campaign(terms("shared"))
    await coupons.add_shared_code("shared", "SHARED")
    first = RedeemRequest("SHARED", "u1", "o1", "k1", fingerprint(1))
    second = RedeemRequest("SHARED", "u1", "o1", "k2", fingerprint(2))
    assert (await coupons.redeem(first, Money(100, "EUR"))).ok
    again = await coupons.redeem(second, Money(100, "EUR"))
    assert again.refusal is not None and again.refusal.code == "ALREADY_REDEEMED"


async def test_erase_user_forgets_the_shopper(coupons: CouponService, store: Store) -> None:
    await coupons.create_campaign(terms("c"))
    await coupons.add_shared_code("c", "CCODE")
    await coupons.mint_personal_code("c", "gone", "welcome", "first", None)
    await coupons.redeem(RedeemRequest("CCODE", "gone", "o1", "k", "f"), Money(100, "EUR"))
    await coupons.redeem(RedeemRequest("CCODE", "stays", "o2", "k2", "f"), Money(100, "EUR"))
    report = await privacy.erase_user(store, "gone")
    # redemption, usage counter, personal code, the redemption's idempotency record
    for name in ("coupon_redemptions", "coupon_usage", "coupon_codes", "coupon_idempotency"):
        assert report.deleted[name] == 1, name
        assert await store.collection(name).count_documents({"user_id": "gone"}) == 0
    assert await store.collection("coupon_redemptions").count_documents({"user_id": "stays"}) == 1
    campaign = await coupons.get_campaign("c")
    assert campaign is not None and campaign.used == 2  # the merchant's accounting stays
