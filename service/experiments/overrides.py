"""What a variant changes in the storefront: slots, weights, params, coupon strategies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from shopfront.recommend.contract import Slot

if TYPE_CHECKING:
    pass
from shopfront.experiments.assignment import Assignment
from shopfront.experiments.definitions import SlotOverride

# -- applying a variant to the storefront --------------------------------------------------


@dataclass(frozen=True)
class StorefrontOverrides:
    """The storefront configuration after a request's assignments are applied.

    ``strategy_params`` goes into `RequestContext.overrides`; ``personalized=False`` means the
    request must be served like one without personalization consent. ``slot_assignments``
    names, per slot, the assignment that changed it (its experiment and variant are stored on
    the slot's recommendation document and its exposure); ``assignments`` are what the
    response reports as the experiments and variants that served it.
    """

    slots: tuple[Slot, ...]
    coupon_strategies: tuple[str, ...]
    promotions: tuple[str, ...]
    personalized: bool
    strategy_params: Mapping[str, Mapping[str, Any]]
    slot_assignments: Mapping[str, Assignment]
    assignments: tuple[Assignment, ...]


def _apply_slot(slot: Slot, change: SlotOverride) -> Slot:
    strategies = change.strategies if change.strategies is not None else slot.strategies
    if change.weights is not None:
        weights: Mapping[str, float] = dict(change.weights)
    else:
        weights = {k: w for k, w in slot.weights.items() if k in strategies}
    return replace(
        slot,
        strategies=tuple(strategies),
        weights=weights,
        params={**slot.params, **change.params},
        limit=change.limit if change.limit is not None else slot.limit,
    )


def assignment_for_slot(
    assignments: Sequence[Assignment], slot: str, strategies: Iterable[str] = ()
) -> Assignment | None:
    """The assignment whose experiment changes ``slot`` (at most one, by the start rule)."""
    names = tuple(strategies)
    return next((a for a in assignments if a.changes_slot(slot, names)), None)


def apply_overrides(
    slots: Sequence[Slot],
    coupon_strategies: Sequence[str],
    promotions: Sequence[str],
    assignments: Sequence[Assignment],
) -> StorefrontOverrides:
    """Apply each assignment's variant to the page's default configuration.

    Slot overrides replace strategies, weights and limit and merge params; ``enabled=False``
    drops the slot. Coupon strategy and promotion lists replace the active sets. Overrides for
    slots not on the page are ignored. Experiments never change the same area (the start
    rule), so the order of ``assignments`` does not matter.
    """
    by_slot: dict[str, SlotOverride] = {}
    coupons = tuple(coupon_strategies)
    promos = tuple(promotions)
    personalized = True
    params: dict[str, Mapping[str, Any]] = {}
    for a in assignments:
        o = a.override
        for s in o.slots:
            by_slot.setdefault(s.slot, s)
        if o.coupon_strategies is not None:
            coupons = o.coupon_strategies
        if o.promotions is not None:
            promos = o.promotions
        personalized = personalized and o.personalization
        for name, p in o.strategy_params.items():
            params[name] = {**params.get(name, {}), **p}
    out_slots: list[Slot] = []
    owners: dict[str, Assignment] = {}
    for slot in slots:
        change = by_slot.get(slot.name)
        if change is not None and not change.enabled:
            continue
        new = _apply_slot(slot, change) if change is not None else slot
        out_slots.append(new)
        owner = assignment_for_slot(assignments, new.name, new.strategies)
        if owner is not None:
            owners[new.name] = owner
    return StorefrontOverrides(
        slots=tuple(out_slots),
        coupon_strategies=coupons,
        promotions=promos,
        personalized=personalized,
        strategy_params=params,
        slot_assignments=owners,
        assignments=tuple(assignments),
    )
