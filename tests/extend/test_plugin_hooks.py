"""Policy hooks (first valid answer wins, a failing implementation is skipped and named) and
event hooks (each plugin on its own thread, under a deadline, failures reported)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from shopfront.catalog.products import Product
from shopfront.extend.config import config_from_mapping
from shopfront.extend.hookspecs import hookimpl
from shopfront.extend.host import PluginHost
from shopfront.extend.records import PluginEraseError
from shopfront.offers.contract import (
    CouponOffer,
    PricedCart,
    PromotionClass,
    PromotionTerms,
    StackingPlan,
)
from shopfront.platform.config import Settings
from shopfront.platform.money import Money
from shopfront.platform.store import Store
from shopfront.recommend.contract import Candidate, Reason, Slot
from shopfront.shoppers.context import PageType, RequestContext
from shopfront.testing import StaticCatalog

CTX = RequestContext("r1", datetime.now(UTC), PageType.HOME, "EUR", StaticCatalog())
SLOT = Slot("s", "S", ("a", "b"))
CANDIDATES = {
    "a": (Candidate("p1", 3.0), Candidate("p2", 2.0)),
    "b": (Candidate("p3", 9.0),),
}


async def host_of(settings: Settings, store: Store, *plugins: tuple[str, object]) -> PluginHost:
    return await PluginHost.start(
        dataclasses.replace(settings, plugin_hook_timeout_ms=200),
        store,
        builtins=(),
        plugins=list(plugins),
        discover=False,
        config=config_from_mapping({}),
    )


class DefaultBlend:
    """Stands in for the built-in default: marked trylast, so a merchant's blend wins."""

    @hookimpl(trylast=True)
    def blend_candidates(
        self, candidates: Mapping[str, Sequence[Candidate]]
    ) -> Sequence[Candidate]:
        return [c for found in candidates.values() for c in found]


class MerchantBlend:
    """Only strategy b, reversed; declares just the arguments it uses."""

    @hookimpl
    def blend_candidates(
        self, slot: Slot, candidates: Mapping[str, Sequence[Candidate]]
    ) -> Sequence[Candidate] | None:
        if "b" not in slot.strategies:
            return None
        return list(reversed(candidates["b"]))


class BrokenBlend:
    @hookimpl(tryfirst=True)
    def blend_candidates(self, products: Mapping[str, Product]) -> Sequence[Candidate]:
        raise LookupError("no such column")


async def test_blend_candidates_first_answer_wins_and_trylast_default_comes_last(
    settings: Settings, store: Store
) -> None:
    host = await host_of(
        settings, store, ("default", DefaultBlend()), ("merchant", MerchantBlend())
    )
    try:
        blended, problems = host.call_blend(CTX, SLOT, CANDIDATES, {})
        assert problems == [] and blended is not None
        assert [c.product_id for c in blended] == ["p3"]
        # the merchant defers (None) for a slot without b: the default answers
        other = Slot("t", "T", ("a",))
        blended, _ = host.call_blend(CTX, other, {"a": CANDIDATES["a"]}, {})
        assert blended is not None and [c.product_id for c in blended] == ["p1", "p2"]
    finally:
        await host.close()


async def test_a_failing_blend_is_skipped_and_named(settings: Settings, store: Store) -> None:
    host = await host_of(settings, store, ("default", DefaultBlend()), ("broken", BrokenBlend()))
    try:
        blended, problems = host.call_blend(CTX, SLOT, CANDIDATES, {})
        assert blended is not None and len(blended) == 3
        assert [(p.strategy, p.reason) for p in problems] == [
            ("blend_candidates:broken", "error: LookupError")
        ]
        report = {r.name: r for r in host.report()}["broken"]
        assert report.policy_failures == {"blend_candidates": 1}
    finally:
        await host.close()


async def test_no_blend_answer_is_none(settings: Settings, store: Store) -> None:
    host = await host_of(settings, store)
    try:
        assert host.call_blend(CTX, SLOT, CANDIDATES, {}) == (None, [])
    finally:
        await host.close()


OFFERS = [
    CouponOffer("A10", "10 off", Reason("R", "r"), strategy="s1"),
    CouponOffer("B20", "20 off", Reason("R", "r"), strategy="s2"),
]


class BestOfferOnly:
    @hookimpl
    def choose_coupon_offers(self, offers: Sequence[CouponOffer]) -> Sequence[CouponOffer]:
        return [offers[-1]]


class InventsOffers:
    @hookimpl(tryfirst=True)
    def choose_coupon_offers(self, offers: Sequence[CouponOffer]) -> Sequence[CouponOffer]:
        return [CouponOffer("FREE100", "all free", Reason("R", "r"))]


async def test_choose_coupon_offers_picks_among_the_offers_made(
    settings: Settings, store: Store
) -> None:
    host = await host_of(settings, store, ("best", BestOfferOnly()), ("invents", InventsOffers()))
    try:
        chosen, problems = host.choose_offers(CTX, OFFERS)
        assert chosen is not None and [o.code for o in chosen] == ["B20"]
        assert [p.reason for p in problems] == ["invalid output: offers no strategy made: FREE100"]
    finally:
        await host.close()


TERMS = [
    PromotionTerms("ten", "10%", PromotionClass.ORDER),
    PromotionTerms("ship", "free shipping", PromotionClass.SHIPPING),
]
EMPTY_CART = PricedCart("EUR", (), shipping=Money.zero("EUR"))


class ExclusiveStacking:
    @hookimpl
    def promotion_stacking(self, promotions: Sequence[PromotionTerms]) -> StackingPlan:
        return StackingPlan(tuple((t.name,) for t in promotions))


class UnknownNames:
    @hookimpl(tryfirst=True)
    def promotion_stacking(self) -> StackingPlan:
        return StackingPlan((("ten", "ghost"),))


async def test_promotion_stacking_plan_names_only_promotions_in_play(
    settings: Settings, store: Store
) -> None:
    host = await host_of(
        settings, store, ("exclusive", ExclusiveStacking()), ("ghost", UnknownNames())
    )
    try:
        plan, problems = host.stacking_plan(CTX, EMPTY_CART, TERMS)
        assert plan == StackingPlan((("ten",), ("ship",)))
        assert problems[0].strategy == "promotion_stacking:ghost"
        assert "ghost" in problems[0].reason
    finally:
        await host.close()


class EventLog:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.erased: list[str] = []

    @hookimpl
    def on_event(self, event: Mapping[str, Any]) -> Any:
        async def keep() -> None:
            self.events.append((event["type"], threading.current_thread().name))

        return keep()

    @hookimpl
    def on_user_erased(self, user_id: str) -> int:
        self.erased.append(user_id)
        return 3


class SlowAndBroken:
    @hookimpl
    def on_event(self, event: Mapping[str, Any]) -> Any:
        return asyncio.Event().wait()  # never returns: only the host's deadline ends it

    @hookimpl
    def on_user_erased(self, user_id: str) -> Any:
        raise PermissionError("read-only state")


async def test_on_event_runs_on_each_plugins_thread_and_failures_are_reported(
    settings: Settings, store: Store
) -> None:
    log = EventLog()
    host = await host_of(settings, store, ("log", log), ("slow", SlowAndBroken()))
    try:
        failures = await host.emit_event({"type": "view", "product_id": "p1"})
        assert log.events == [("view", "shopfront-plugin:log")]
        assert failures == {"slow": "timeout after 200 ms"}
    finally:
        await host.close()


async def test_on_user_erased_counts_by_plugin_and_refuses_partial_success(
    settings: Settings, store: Store
) -> None:
    log = EventLog()
    host = await host_of(settings, store, ("log", log))
    try:
        assert await host.erase_user("u1") == {"log": 3}
    finally:
        await host.close()
    host = await host_of(settings, store, ("log", log), ("broken", SlowAndBroken()))
    try:
        with pytest.raises(PluginEraseError, match="broken: PermissionError") as info:
            await host.erase_user("u2")
        assert info.value.deleted == {"log": 3}
        assert log.erased == ["u1", "u2"]
    finally:
        await host.close()


class Holder:
    """Keeps a wish list per shopper and per session; tells what it holds."""

    wishes = {"u1": ["shoe"], "s1": ["sock"], "u2": ["hat"]}

    @hookimpl
    def export_user_data(self, user_id: str, session_ids: Sequence[str]) -> Mapping[str, Any]:
        return {k: self.wishes[k] for k in (user_id, *session_ids) if k in self.wishes}


class Mute:
    @hookimpl
    def export_user_data(self, user_id: str) -> Any:
        return None  # holds nothing: left out of the export


class Garbled:
    @hookimpl
    def export_user_data(self, user_id: str) -> Any:
        return ["not", "a", "mapping"]


async def test_export_user_data_collects_by_plugin_and_names_failures(
    settings: Settings, store: Store
) -> None:
    host = await host_of(
        settings,
        store,
        ("holder", Holder()),
        ("mute", Mute()),
        ("garbled", Garbled()),
        ("broken", SlowAndBroken()),
    )
    try:
        exported = await host.export_user("u1", ["s1"])
        assert exported.data == {"holder": {"u1": ["shoe"], "s1": ["sock"]}}
        assert exported.failures == {"garbled": "returned list, expected a mapping"}
    finally:
        await host.close()
