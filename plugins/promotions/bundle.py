"""A bundle: these items together for one price, repeating per complete set.

    params = {"items": [{"product_id": "tent", "quantity": 1},
                        {"product_id": "mat", "quantity": 2}],
              "price": {"amount": 19900, "currency": "EUR"},
              "max_applications": 1}                        # optional

The saving is the items' regular price minus the bundle price, per complete set, spread over
the bundled lines in proportion to their regular value. A cart with part of a bundle gets a
nudge naming the missing products.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shopfront import (
    Money,
    Nudge,
    PricedCart,
    PricedLine,
    ProductScope,
    PromotionClass,
    PromotionOutcome,
    PromotionSpec,
    RequestContext,
    RuleError,
    StrategySetup,
    allocate,
    int_value,
    money_value,
    text_value,
)
from shopfront.plugins.promotions.base import (
    NO_ELIGIBLE_ITEMS,
    NOTHING_TO_DISCOUNT,
    DefinedPromotion,
    Definition,
    applied,
    max_applications,
    not_applied,
    read_params,
    with_nudge,
)

MAX_ITEMS = 20


@dataclass(frozen=True)
class Bundle(DefinedPromotion):
    definition: Definition
    items: Mapping[str, int]  # product id -> units per set
    price: Money
    max_applications: int

    def evaluate(
        self, ctx: RequestContext, cart: PricedCart, priced_so_far: PricedCart
    ) -> PromotionOutcome:
        in_cart = {pid: 0 for pid in self.items}
        for line in priced_so_far.lines:
            if line.product_id in in_cart:
                in_cart[line.product_id] += line.quantity
        sets = min(in_cart[pid] // need for pid, need in self.items.items())
        sets = min(sets, self.max_applications)
        if sets == 0:
            return self._incomplete(in_cart)
        lines = {line.index: line for line in priced_so_far.lines}
        bundled = self._bundled_units(priced_so_far.lines, sets)
        regular = {i: lines[i].unit_price.amount * count for i, count in bundled.items()}
        saving = sum(regular.values()) - self.price.amount * sets
        if saving <= 0:
            return not_applied("the bundle price is not lower here", NOTHING_TO_DISCOUNT)
        indices = sorted(regular)
        parts = allocate(saving, [regular[i] for i in indices])
        return applied(
            {i: min(part, lines[i].total.amount) for i, part in zip(indices, parts, strict=True)}
        )

    def _bundled_units(self, lines: Sequence[PricedLine], sets: int) -> dict[int, int]:
        """Units per line index that make up ``sets`` complete sets (earlier lines first)."""
        wanted = {pid: need * sets for pid, need in self.items.items()}
        bundled: dict[int, int] = {}
        for line in lines:
            take = min(line.quantity, wanted.get(line.product_id, 0))
            if take:
                bundled[line.index] = take
                wanted[line.product_id] -= take
        return bundled

    def _incomplete(self, in_cart: Mapping[str, int]) -> PromotionOutcome:
        offer = f"the bundle for {self.price.format()}"
        missing = [pid for pid, need in self.items.items() if in_cart[pid] < need]
        outcome = not_applied(f"add every item of {offer}", NO_ELIGIBLE_ITEMS)
        if not any(in_cart.values()):
            return outcome  # nothing of the bundle in the cart: no nudge
        short = sum(self.items[pid] - in_cart[pid] for pid in missing)
        nudge = Nudge(
            promotion="",
            text=f"Add {short} more item{'s' if short > 1 else ''} to get {offer}",
            kind="bundle",
            missing_quantity=short,
            product_ids=tuple(missing),
            eligible=ProductScope(product_ids=frozenset(missing)),
        )
        return with_nudge(outcome, self.definition, nudge)


def read_items(raw: Any) -> dict[str, int]:
    if isinstance(raw, str | bytes | Mapping) or not isinstance(raw, Sequence) or not raw:
        raise RuleError("params.items", "must be a list of {product_id, quantity}")
    if len(raw) > MAX_ITEMS:
        raise RuleError("params.items", f"has {len(raw)} items; at most {MAX_ITEMS}")
    items: dict[str, int] = {}
    for i, item in enumerate(raw):
        field = f"params.items[{i}]"
        if not isinstance(item, Mapping) or set(item) - {"product_id", "quantity"}:
            raise RuleError(field, "must have product_id and quantity")
        pid = text_value(item.get("product_id"), f"{field}.product_id")
        if pid in items:
            raise RuleError(f"{field}.product_id", f"{pid!r} is listed twice")
        items[pid] = int_value(item.get("quantity", 1), f"{field}.quantity", minimum=1, maximum=100)
    if sum(items.values()) < 2:
        raise RuleError("params.items", "a bundle needs at least two units")
    return items


def build(setup: StrategySetup) -> Bundle:
    params = read_params(setup.config, {"items", "price", "max_applications"})
    price = money_value(params.get("price"), "params.price")
    return Bundle(
        definition=Definition.from_setup(setup, PromotionClass.PRODUCT, 100, [price]),
        items=read_items(params.get("items")),
        price=price,
        max_applications=max_applications(params.get("max_applications")),
    )


SPEC = PromotionSpec(
    name="bundle",
    factory=build,
    description="These items together for one price, per complete set.",
    managed=True,
)
