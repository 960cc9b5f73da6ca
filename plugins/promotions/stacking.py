"""How promotions stack by default: the best deal for the shopper.

Two promotions combine when each accepts the other: an ``exclusive`` one accepts nobody, an
``all`` one everybody, a ``classes`` one only promotions of the classes it names (``order``,
``product``, ``shipping``, ``coupon``). The default plan lists every set of promotions that
can all combine, smallest sets first, each in chain order (priority, then name). The engine
prices every set and keeps the lowest total, ties to the earlier set: so exclusive promotions
compete with each other and with the best combination of the rest, and the same price with
fewer promotions wins.

The list grows exponentially with the number of promotions that combine, so past
`MAX_ALTERNATIVES` sets the plan falls back to each promotion alone plus, for each, the
combination built greedily in priority order starting from it.
"""

from __future__ import annotations

from collections.abc import Sequence

from shopfront import PromotionTerms, Stacking, StackingPlan

MAX_ALTERNATIVES = 64  # every set of up to 6 combinable promotions


class _TooMany(Exception):
    pass


def accepts(a: PromotionTerms, b: PromotionTerms) -> bool:
    """Whether ``a``'s stacking rule lets ``b`` apply in the same cart."""
    if a.stacking is Stacking.EXCLUSIVE:
        return False
    if a.stacking is Stacking.CLASSES:
        return b.klass in a.combines_with
    return True


def combinable(a: PromotionTerms, b: PromotionTerms) -> bool:
    return accepts(a, b) and accepts(b, a)


def chain_order(terms: Sequence[PromotionTerms]) -> list[PromotionTerms]:
    """Priority order (lower first), then name; one entry per name."""
    unique = {t.name: t for t in reversed(terms)}  # the first entry of a name wins
    return sorted(unique.values(), key=lambda t: (t.priority, t.name))


def best_deal(terms: Sequence[PromotionTerms], limit: int = MAX_ALTERNATIVES) -> StackingPlan:
    """Every combinable set, smallest first (see the module docstring)."""
    ordered = chain_order(terms)
    try:
        sets = _combinable_sets(ordered, limit)
    except _TooMany:
        sets = _greedy_sets(ordered)
    sets.sort(key=lambda s: (len(s), s))
    return StackingPlan(tuple(tuple(ordered[i].name for i in s) for s in sets))


def priority_first(terms: Sequence[PromotionTerms]) -> StackingPlan:
    """One set: promotions in priority order, each kept when it combines with all kept before.

    For a merchant who wants priority, not the shopper's best deal, to decide: return this
    from your own ``promotion_stacking`` implementation.
    """
    kept: list[PromotionTerms] = []
    for t in chain_order(terms):
        if all(combinable(k, t) for k in kept):
            kept.append(t)
    return StackingPlan((tuple(t.name for t in kept),) if kept else ())


def _combinable_sets(ordered: Sequence[PromotionTerms], limit: int) -> list[tuple[int, ...]]:
    n = len(ordered)
    ok = [[combinable(ordered[i], ordered[j]) for j in range(n)] for i in range(n)]
    found: list[tuple[int, ...]] = []

    def grow(current: tuple[int, ...], start: int) -> None:
        for j in range(start, n):
            if all(ok[i][j] for i in current):
                bigger = (*current, j)
                found.append(bigger)
                if len(found) > limit:
                    raise _TooMany
                grow(bigger, j + 1)

    grow((), 0)
    return found


def _greedy_sets(ordered: Sequence[PromotionTerms]) -> list[tuple[int, ...]]:
    n = len(ordered)
    sets: set[tuple[int, ...]] = {(i,) for i in range(n)}
    for seed in range(n):
        chosen = [seed]
        for j in range(n):
            if j != seed and all(combinable(ordered[i], ordered[j]) for i in chosen):
                chosen.append(j)
        sets.add(tuple(sorted(chosen)))
    return list(sets)
