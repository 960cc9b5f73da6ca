"""The default stacking policy: which promotions may combine, and the best-deal plan."""

from __future__ import annotations

from shopfront.offers.contract import PromotionClass, PromotionTerms, Stacking, StackingPlan
from shopfront.plugins.promotions import promotion_stacking
from shopfront.plugins.promotions.stacking import best_deal, combinable, priority_first

from tests.plugins.promotions.kit import context

ORDER, PRODUCT, SHIPPING, COUPON = (
    PromotionClass.ORDER,
    PromotionClass.PRODUCT,
    PromotionClass.SHIPPING,
    PromotionClass.COUPON,
)


def terms(
    name: str,
    klass: PromotionClass = ORDER,
    stacking: Stacking = Stacking.ALL,
    priority: int = 100,
    combines_with: frozenset[PromotionClass] = frozenset(),
) -> PromotionTerms:
    return PromotionTerms(name, name, klass, priority, stacking, combines_with)


def test_who_combines_with_whom() -> None:
    a, b = terms("a"), terms("b", PRODUCT)
    solo = terms("solo", stacking=Stacking.EXCLUSIVE)
    ship_only = terms("ship", SHIPPING, Stacking.CLASSES, combines_with=frozenset({PRODUCT}))
    assert combinable(a, b)
    assert not combinable(a, solo) and not combinable(solo, solo)
    assert combinable(ship_only, b) and not combinable(ship_only, a)
    coupon = terms("coupon:X", COUPON, Stacking.CLASSES, combines_with=frozenset({ORDER}))
    assert combinable(coupon, a) and not combinable(coupon, b)
    assert not combinable(
        coupon, terms("coupon:Y", COUPON, Stacking.CLASSES, combines_with=frozenset({ORDER}))
    )


def test_best_deal_lists_every_combinable_set_smallest_first() -> None:
    plan = best_deal(
        [
            terms("b", priority=2),
            terms("a", priority=1),
            terms("x", stacking=Stacking.EXCLUSIVE, priority=0),
        ]
    )
    assert plan == StackingPlan((("x",), ("a",), ("b",), ("a", "b")))


def test_best_deal_falls_back_to_greedy_sets_when_there_are_too_many() -> None:
    many = [terms(f"p{i}", priority=i) for i in range(10)]  # 1023 combinable sets
    plan = best_deal(many, limit=50)
    assert len(plan.alternatives) == 11  # each alone, plus everything together
    assert plan.alternatives[-1] == tuple(f"p{i}" for i in range(10))


def test_priority_first_keeps_what_combines_in_priority_order() -> None:
    plan = priority_first(
        [
            terms("late", priority=9),
            terms("solo", stacking=Stacking.EXCLUSIVE, priority=5),
            terms("first", priority=1),
        ]
    )
    assert plan == StackingPlan((("first", "late"),))


def test_the_hook_implementation_returns_the_best_deal_plan() -> None:
    given = [terms("a"), terms("b")]
    assert promotion_stacking(context(), None, given) == best_deal(given)  # type: ignore[arg-type]
