"""A price-sensitivity signal from the profile: does the shopper usually pay well below
what their favourite category costs on average?

The category's average price comes from the catalog, computed over at most `SAMPLE`
products and cached for `TTL_S` seconds per process, so the signal costs a request nothing
once warm.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from shopfront import RequestContext, Store

SAMPLE = 5000
TTL_S = 600.0


@dataclass
class PriceSensitivity:
    store: Store
    # Sensitive when the typical price paid is below this share of the category average.
    threshold: float = 0.7
    _cache: dict[tuple[str, str], tuple[float, int | None]] = field(default_factory=dict)

    async def is_sensitive(self, ctx: RequestContext) -> bool:
        profile = ctx.profile
        if profile is None or not ctx.personalized or profile.typical_price is None:
            return False
        if profile.typical_price.currency != ctx.currency:
            return False
        top = profile.category_affinities[0][0] if profile.category_affinities else ""
        average = await self.average_price(top.split(" > ")[0], ctx.currency)
        return average is not None and profile.typical_price.amount < average * self.threshold

    async def average_price(self, top_category: str, currency: str) -> int | None:
        """Average active product price (minor units) under a top-level category ("" for
        the whole catalog), or None when there are no such products."""
        key = (top_category, currency)
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < TTL_S:
            return cached[1]
        match: dict[str, object] = {"active": True, "price.currency": currency}
        if top_category:
            match["category_path.0"] = top_category
        pipeline = [
            {"$match": match},
            {"$limit": SAMPLE},
            {"$group": {"_id": None, "avg": {"$avg": "$price.amount"}}},
        ]
        rows = await self.store.products.aggregate(pipeline).to_list(None)
        average = round(rows[0]["avg"]) if rows and rows[0]["avg"] is not None else None
        self._cache[key] = (time.monotonic(), average)
        return average
