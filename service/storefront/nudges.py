"""Nudge products: what the recommenders suggest to close a promotion's gap."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from shopfront.catalog.products import Product
from shopfront.extend.host import PluginHost
from shopfront.extend.records import StrategyKind
from shopfront.offers.contract import (
    ProductScope,
)
from shopfront.offers.pricing import (
    NudgeSuggester,
)
from shopfront.platform.money import Money
from shopfront.recommend.contract import Slot
from shopfront.shoppers.context import RequestContext
from shopfront.storefront.slots import is_personalized

# Strategies asked for products that complete a nudge, in order of preference.
NUDGE_STRATEGIES = ("bought_together", "recommended_for_you", "session", "trending")
NUDGE_POOL = 50


class RecommendedCompletions:
    """Promotion-aware suggestions: the recommenders' candidates for this shopper, kept when
    they count towards the nudge (eligible, in stock, not in the cart, and for a spend nudge
    priced to close the gap), ranked by the recommenders; the catalog suggester fills up
    when they do not give enough."""

    def __init__(self, host: PluginHost, fallback: NudgeSuggester | None) -> None:
        self.host = host
        self.fallback = fallback
        # Made per request (see `Storefront._request_pricer`), so this cache is per request.
        self._pool: asyncio.Future[tuple[dict[str, float], Mapping[str, Product]]] | None = None

    async def __call__(
        self,
        ctx: RequestContext,
        kind: str,
        missing: Money | None,
        eligible: ProductScope,
        limit: int,
    ) -> list[str]:
        if self._pool is None:  # one ask of the recommenders per request, whatever the nudges
            self._pool = asyncio.ensure_future(self._candidates(ctx))
        score, found = await self._pool
        usable = [
            pid
            for pid, product in found.items()
            if product.active
            and product.in_stock
            and product.price.currency == ctx.currency
            and eligible.matches(product)
        ]

        # A spend nudge prefers products that close the gap on their own.
        def closes(pid: str) -> bool:
            return missing is None or found[pid].price.amount >= missing.amount

        chosen = sorted(usable, key=lambda pid: (not closes(pid), -score[pid], pid))[:limit]
        if len(chosen) < limit and self.fallback is not None:
            more = await self.fallback(ctx, kind, missing, eligible, limit)
            chosen += [pid for pid in more if pid not in chosen][: limit - len(chosen)]
        return chosen

    async def _candidates(
        self, ctx: RequestContext
    ) -> tuple[dict[str, float], Mapping[str, Product]]:
        """The recommenders' products for this shopper (not in the cart), scored by rank."""
        names = [
            n
            for n in NUDGE_STRATEGIES
            if self.host.unavailable(n, StrategyKind.RECOMMENDER) is None
            and (ctx.personalized or not is_personalized(self.host, n))
        ]
        slot = Slot(
            name="nudge", title="Complete your order", strategies=tuple(names), limit=NUDGE_POOL
        )
        results = await asyncio.gather(*(self.host.recommend(n, ctx, slot) for n in names))
        score: dict[str, float] = {}
        for weight, result in zip(range(len(names), 0, -1), results, strict=True):
            for rank, cand in enumerate(result.value or ()):
                score[cand.product_id] = score.get(cand.product_id, 0.0) + weight / (rank + 1)
        in_cart = {line.product_id for line in ctx.cart_lines}
        found = await ctx.catalog.get_many([pid for pid in score if pid not in in_cart])
        return score, found
