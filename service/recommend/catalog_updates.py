"""Products that change between trainings reach the strategies that can index them at once.

A strategy that can learn a product without retraining (the built-in content strategies:
``search``, ``because_you_searched``, ``new_for_you``) has a method
``add_products(products: Sequence[Product]) -> None`` that swaps in a model extended with
them (`LearnsProducts`). Whoever sees catalog changes -- the catalog mutation on the instance
that took it, the in-memory catalog snapshot when it refreshes -- calls `index_products` with
the recommender objects and the changed products. The next training replaces these additions
with a model fitted on everything.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from shopfront.catalog.products import Product

log = logging.getLogger("shopfront.models")


@runtime_checkable
class LearnsProducts(Protocol):
    def add_products(self, products: Sequence[Product]) -> None:
        """Serve ``products`` (new or changed) from now on, without retraining."""
        ...


def index_products(strategies: Iterable[object], products: Sequence[Product]) -> int:
    """Hand ``products`` to every strategy that learns products; returns how many took them.
    A strategy that fails is logged and skipped (it keeps its current model)."""
    if not products:
        return 0
    taken = 0
    for strategy in strategies:
        if not isinstance(strategy, LearnsProducts):
            continue
        try:
            strategy.add_products(products)
        except Exception:
            log.exception(
                "%s could not index %d new products", type(strategy).__name__, len(products)
            )
            continue
        taken += 1
    return taken
