"""The built-in coupon strategies: who gets which offer, why, until when - and the codes they
mint work only for that shopper."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shopfront.catalog import products as catalog
from shopfront.extend.config import resolve_strategy_config
from shopfront.offers.campaigns import fingerprint
from shopfront.offers.contract import CouponOffer, CouponStrategy
from shopfront.offers.coupon_service import CouponService
from shopfront.offers.redemption import RedeemRequest
from shopfront.offers.rules import RuleError
from shopfront.platform.config import ConfigError, Settings
from shopfront.platform.money import Money
from shopfront.platform.store import Store
from shopfront.platform.strategy_setup import StrategySetup
from shopfront.plugins.coupons import STRATEGIES, choose_coupon_offers
from shopfront.plugins.coupons.welcome import Welcome
from shopfront.recommend.contract import Reason
from shopfront.shoppers.profile_view import Profile

from tests.plugins.promotions.kit import NOW, context

SPECS = {spec.name: spec for spec in STRATEGIES}


async def strategy(name: str, store: Store, settings: Settings, **config: Any) -> CouponStrategy:
    spec = SPECS[name]
    setup = StrategySetup(
        name=name,
        config={**spec.default_config, **config},
        settings=settings,
        store=store,
        log=logging.getLogger(name),
    )
    built = spec.factory(setup)
    assert isinstance(built, CouponStrategy)
    return built


def shopper(user: str = "u1", now: datetime = NOW, **fields: Any) -> Any:
    profile = Profile(user, now, **fields)
    return context(profile=profile, user_id=user, now=now)


async def offers(s: CouponStrategy, ctx: Any) -> list[CouponOffer]:
    return list(await s.offers(ctx))


async def test_welcome_for_a_first_order_only(store: Store, settings: Settings) -> None:
    welcome = await strategy("welcome", store, settings)
    [offer] = await offers(welcome, shopper(orders=0))
    assert offer.reason.code == "FIRST_ORDER" and offer.reason.text
    assert offer.title == "10% off: your first order"
    assert offer.expires_at == NOW + timedelta(days=14)
    assert offer.strategy == "welcome" and offer.campaign_id == "auto-welcome-std-EUR"
    again = await offers(welcome, shopper(orders=0))
    assert [o.code for o in again] == [offer.code]  # the same code for the same shopper
    assert await offers(welcome, shopper(orders=2)) == []
    assert await offers(welcome, replace(shopper(orders=0), personalized=False)) == []
    assert await offers(welcome, context()) == []  # anonymous


async def test_win_back_after_n_days(store: Store, settings: Settings) -> None:
    win_back = await strategy("win_back", store, settings, after_days=60)
    lapsed = shopper(orders=3, last_purchase_at=NOW - timedelta(days=75))
    [offer] = await offers(win_back, lapsed)
    assert "75 days" in offer.reason.text and offer.title.startswith("15% off")
    recent = shopper(orders=3, last_purchase_at=NOW - timedelta(days=10))
    assert await offers(win_back, recent) == []


async def test_category_affinity_discounts_only_the_favourite_category(
    store: Store, settings: Settings
) -> None:
    affinity = await strategy("category_affinity", store, settings)
    fan = shopper(orders=1, category_affinities=(("Shoes > Trail", 3.0), ("Bags", 1.0)))
    [offer] = await offers(affinity, fan)
    assert offer.title == "10% off: Shoes > Trail"
    assert "Shoes > Trail" in offer.reason.text
    campaign = await CouponService(store, settings).get_campaign(str(offer.campaign_id))
    assert campaign is not None
    assert campaign.eligible.categories == frozenset({("Shoes", "Trail")})
    assert await offers(affinity, shopper(orders=0, category_affinities=(("Bags", 1.0),))) == []


async def test_cart_recovery_per_abandoned_cart(store: Store, settings: Settings) -> None:
    recovery = await strategy("cart_recovery", store, settings, after_hours=24)
    left = NOW - timedelta(hours=30)
    ctx = shopper(cart=(("shoe", 1), ("sock", 2)), cart_updated_at=left)
    [offer] = await offers(recovery, ctx)
    assert offer.reason.text == "You left 3 items in your cart."
    assert offer.expires_at == NOW + timedelta(hours=48)
    fresh = shopper(cart=(("shoe", 1),), cart_updated_at=NOW - timedelta(hours=2))
    assert await offers(recovery, fresh) == []
    changed = shopper(cart=(("shoe", 2),), cart_updated_at=left - timedelta(hours=1))
    [other] = await offers(recovery, changed)
    assert other.code != offer.code  # a different abandoned cart, a different code


async def test_price_sensitive_shoppers_get_the_larger_tier(
    store: Store, settings: Settings
) -> None:
    await catalog.upsert_products(
        store,
        [
            {
                "id": f"shoe{i}",
                "title": "Shoe",
                "price": {"amount": price, "currency": "EUR"},
                "category_path": ["Shoes"],
            }
            for i, price in enumerate((8000, 10_000, 12_000))
        ],
    )
    welcome = await strategy(
        "welcome",
        store,
        settings,
        sensitive_discount={"kind": "percent", "percent": "20"},
    )
    shoes = (("Shoes", 1.0),)
    bargain = shopper("b", category_affinities=shoes, typical_price=Money(4000, "EUR"))
    regular = shopper("r", category_affinities=shoes, typical_price=Money(9000, "EUR"))
    [cheap] = await offers(welcome, bargain)
    [usual] = await offers(welcome, regular)
    assert cheap.title.startswith("20% off") and cheap.campaign_id == "auto-welcome-plus-EUR"
    assert usual.title.startswith("10% off")
    # Same shopper, same period, no longer price-sensitive: the same code, still 20% off.
    changed = shopper("b", category_affinities=shoes, typical_price=Money(9000, "EUR"))
    [same] = await offers(welcome, changed)
    assert same.code == cheap.code and same.title.startswith("20% off")


async def test_different_shoppers_see_different_offers(store: Store, settings: Settings) -> None:
    built = [await strategy(name, store, settings) for name in SPECS]
    newcomer = shopper("new", orders=0)
    lapsed = shopper(
        "old",
        orders=4,
        last_purchase_at=NOW - timedelta(days=90),
        category_affinities=(("Bags", 2.0),),
    )

    async def all_offers(ctx: Any) -> list[str]:
        found = [o for s in built for o in await s.offers(ctx)]
        return sorted(o.strategy for o in choose_coupon_offers(ctx, found))

    assert await all_offers(newcomer) == ["welcome"]
    assert await all_offers(lapsed) == ["category_affinity", "win_back"]


async def test_a_personal_code_works_only_for_its_shopper(store: Store, settings: Settings) -> None:
    welcome = await strategy("welcome", store, settings)
    now = datetime.now(UTC)  # redemption runs on the clock
    [offer] = await offers(welcome, shopper("alice", now, orders=0))
    service = CouponService(store, settings)

    def request(user: str) -> RedeemRequest:
        return RedeemRequest(offer.code, user, "o1", f"k-{user}", fingerprint(user))

    refused = await service.redeem(request("bob"), Money(100, "EUR"))
    assert refused.refusal is not None and refused.refusal.code == "NOT_ELIGIBLE"
    assert (await service.redeem(request("alice"), Money(100, "EUR"))).ok
    assert await offers(welcome, shopper("alice", now, orders=0)) == []  # used: not offered


def test_choose_offers_dedupes_and_puts_the_most_urgent_first() -> None:
    def offer(code: str, days: int | None, name: str = "s") -> CouponOffer:
        expires = NOW + timedelta(days=days) if days is not None else None
        return CouponOffer(code, code, Reason("R", "why"), expires, strategy=name)

    chosen = choose_coupon_offers(
        context(),
        [offer("A", 9), offer("B", None), offer("C", 2), offer("A", 9), offer("D", 5)],
    )
    assert [o.code for o in chosen] == ["C", "D", "A"]


@pytest.mark.parametrize(
    ("name", "config", "field"),
    [
        ("welcome", {"discount": {"kind": "percent"}}, "discount"),
        ("welcome", {"discount": {"kind": "free_product", "product_id": "x"}}, "discount"),
        ("welcome", {"sensitive_discount": {"kind": "nope"}}, "sensitive_discount.kind"),
    ],
)
async def test_discount_errors_name_the_setting(
    store: Store, settings: Settings, name: str, config: dict[str, Any], field: str
) -> None:
    with pytest.raises(RuleError) as caught:
        await strategy(name, store, settings, **config)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("name", "config", "problem"),
    [
        ("welcome", {"validity_days": 0}, "'validity_days': must be at least 1"),
        ("win_back", {"after_days": "soon"}, "'after_days': expected an integer"),
        ("welcome", {"typo": 1}, "'typo': unknown key"),
        ("cart_recovery", {"after_hours": 0}, "'after_hours': must be at least 1"),
        ("category_affinity", {"min_spend": 30}, "'min_spend': expected a table"),
    ],
)
def test_settings_are_refused_before_the_factory_runs(
    settings: Settings, name: str, config: dict[str, Any], problem: str
) -> None:
    spec = SPECS[name]
    with pytest.raises(ConfigError, match=rf"strategy '{name}'.*{problem}"):
        resolve_strategy_config(
            plugin="coupons",
            strategy=name,
            defaults=spec.default_config,
            secrets=spec.secrets,
            section=config,
            settings=settings,
            config_type=spec.config_type,
        )


async def test_documented_offer_terms_can_be_configured(store: Store, settings: Settings) -> None:
    spec = SPECS["welcome"]
    resolved = resolve_strategy_config(
        plugin="coupons",
        strategy="welcome",
        defaults=spec.default_config,
        secrets=spec.secrets,
        section={
            "sensitive_discount": {"kind": "percent", "percent": "15"},
            "min_spend": {"amount": 3000, "currency": "EUR"},
        },
        settings=settings,
        config_type=spec.config_type,
    )
    welcome = await strategy("welcome", store, settings, **resolved.values)
    assert isinstance(welcome, Welcome)
    assert welcome.coupons.terms.min_spend == Money(3000, "EUR")
    assert welcome.coupons.terms.sensitive_discount is not None
