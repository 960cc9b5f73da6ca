"""Small, real plugins for the host's and the storefront's tests: well-behaved ones, and one
of each way a plugin can misbehave (raise, sleep past its deadline, spin without yielding,
return the wrong type, return far too much)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shopfront.catalog.products import Product
from shopfront.extend.hookspecs import hookimpl
from shopfront.extend.isolation import StrategyInterrupted
from shopfront.offers.contract import (
    CouponOffer,
    CouponStrategySpec,
    PricedCart,
    PromotionClass,
    PromotionOutcome,
    PromotionSpec,
    PromotionTerms,
)
from shopfront.platform.money import Money
from shopfront.platform.strategy_setup import StrategySetup
from shopfront.recommend.contract import Candidate, Reason, RecommenderSpec, Slot
from shopfront.shoppers.context import RequestContext


@dataclass
class SpecPlugin:
    """A plugin object registering the given specs (and nothing else)."""

    recommenders: Sequence[RecommenderSpec] = ()
    coupons: Sequence[CouponStrategySpec] = ()
    promotions: Sequence[PromotionSpec] = ()

    @hookimpl
    def register_recommenders(self) -> Sequence[RecommenderSpec]:
        return list(self.recommenders)

    @hookimpl
    def register_coupon_strategies(self) -> Sequence[CouponStrategySpec]:
        return list(self.coupons)

    @hookimpl
    def register_promotions(self) -> Sequence[PromotionSpec]:
        return list(self.promotions)


# -- recommenders --------------------------------------------------------------------------


class ListRecommender:
    """Recommends ``config["ids"]`` in order, scores descending, asking the catalog for them
    (as real strategies do) and keeping the ones in stock."""

    def __init__(self, setup: StrategySetup) -> None:
        self.name = setup.name
        self.ids: list[str] = list(setup.config["ids"])
        self.calls = 0

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        self.calls += 1
        found = await ctx.catalog.get_many(self.ids)
        n = len(self.ids)
        return [
            Candidate(pid, float(n - i), (Reason("LISTED", f"Listed by {self.name}"),))
            for i, pid in enumerate(self.ids)
            if pid not in found or found[pid].stock > 0
        ]


def list_recommender(name: str, ids: Sequence[str], personalized: bool = False) -> RecommenderSpec:
    return RecommenderSpec(
        name, ListRecommender, f"{name} list", {"ids": list(ids)}, personalized=personalized
    )


class Raising:
    def __init__(self, setup: StrategySetup) -> None:
        pass

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        raise RuntimeError("the recommender is broken")


@dataclass
class SleepProbe:
    finished: threading.Event = field(default_factory=threading.Event)
    cancelled: threading.Event = field(default_factory=threading.Event)


class Sleeping:
    """Sleeps ``config["sleep_s"]`` before answering (records whether it finished)."""

    def __init__(self, setup: StrategySetup, probe: SleepProbe) -> None:
        self.sleep_s = float(setup.config["sleep_s"])
        self.probe = probe

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        try:
            await asyncio.sleep(self.sleep_s)
        except asyncio.CancelledError:
            self.probe.cancelled.set()
            raise
        self.probe.finished.set()
        return []


@dataclass
class SpinControl:
    """Lets a test see a spinning strategy start and release it (it gives up on its own after
    ``max_s``, so a failed test never leaves a thread spinning)."""

    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    interrupted: threading.Event = field(default_factory=threading.Event)
    max_s: float = 20.0


class Spinning:
    """An ``async def`` that never awaits: a CPU loop until released."""

    def __init__(self, setup: StrategySetup, control: SpinControl) -> None:
        self.control = control

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        control = self.control
        control.started.set()
        give_up = time.monotonic() + control.max_s
        try:
            while not control.release.is_set() and time.monotonic() < give_up:
                pass
        except StrategyInterrupted:
            control.interrupted.set()
            raise
        control.finished.set()
        return []


class WrongType:
    def __init__(self, setup: StrategySetup) -> None:
        pass

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Any:
        return {"p1": 1.0}


class Flood:
    def __init__(self, setup: StrategySetup) -> None:
        pass

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        return [Candidate(f"x{i}", 1.0) for i in range(10_000)]


@dataclass
class Switch:
    """A recommender whose failure a test switches on and off; counts its calls."""

    failing: bool = True
    calls: int = 0


class Switchable:
    def __init__(self, setup: StrategySetup, switch: Switch) -> None:
        self.switch = switch

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        self.switch.calls += 1
        if self.switch.failing:
            raise ConnectionError("upstream down")
        return [Candidate("p1", 1.0)]


# -- coupons -------------------------------------------------------------------------------


class FixedCoupon:
    def __init__(self, setup: StrategySetup) -> None:
        self.code = str(setup.config["code"])
        self.title = str(setup.config["title"])

    async def offers(self, ctx: RequestContext) -> Sequence[CouponOffer]:
        return [CouponOffer(self.code, self.title, Reason("WELCOME", "Welcome!"))]


def fixed_coupon(name: str, code: str, personalized: bool = False) -> CouponStrategySpec:
    return CouponStrategySpec(
        name,
        FixedCoupon,
        "a fixed code",
        {"code": code, "title": f"{code} off"},
        personalized=personalized,
    )


class RaisingCoupon:
    def __init__(self, setup: StrategySetup) -> None:
        pass

    async def offers(self, ctx: RequestContext) -> Sequence[CouponOffer]:
        raise KeyError("coupon store")


# -- promotions ----------------------------------------------------------------------------


class PercentOff:
    """``percent`` off every line (a real, if simple, promotion)."""

    def __init__(self, setup: StrategySetup) -> None:
        self.percent = int(setup.config["percent"])
        self.priority = int(setup.config["priority"])
        self.name = setup.name

    @property
    def terms(self) -> PromotionTerms:
        return PromotionTerms(
            self.name, f"{self.percent}% off", PromotionClass.ORDER, priority=self.priority
        )

    async def apply(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        if not priced_so_far.lines:
            return PromotionOutcome(False, "the cart is empty")
        return PromotionOutcome(
            True,
            line_discounts={
                line.index: line.total.percent(self.percent).amount for line in priced_so_far.lines
            },
        )


def percent_off(name: str, percent: int, priority: int = 100) -> PromotionSpec:
    return PromotionSpec(
        name, PercentOff, f"{percent}% off", {"percent": percent, "priority": priority}
    )


class RaisingPromotion(PercentOff):
    async def apply(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        raise ZeroDivisionError("bad maths")


class GreedyPromotion(PercentOff):
    """Tries to take more off a line than the line costs: the chain must refuse it."""

    async def apply(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        line = priced_so_far.lines[0]
        return PromotionOutcome(True, line_discounts={line.index: line.total.amount + 1})


# -- catalog -------------------------------------------------------------------------------


def product_doc(pid: str, **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": pid,
        "title": f"Product {pid}",
        "price": {"amount": 1000, "currency": "EUR"},
        "category_path": ["Shoes", "Running"],
        "brand": "Stride",
        "stock": 5,
    }
    doc.update(over)
    return doc


def product(pid: str, **over: Any) -> Product:
    doc = product_doc(pid, **over)
    return Product(
        id=doc["id"],
        title=doc["title"],
        price=Money(doc["price"]["amount"], doc["price"]["currency"]),
        category_path=tuple(doc["category_path"]),
        brand=doc["brand"],
        stock=doc["stock"],
        active=doc.get("active", True),
    )


def counts(mapping: Mapping[str, Any]) -> dict[str, int]:
    return {k: len(v) for k, v in mapping.items()}
