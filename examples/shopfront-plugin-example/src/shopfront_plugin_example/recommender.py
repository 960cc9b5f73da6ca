"""Staff picks: the merchant's own list, as a recommender."""

from __future__ import annotations

from collections.abc import Sequence

from shopfront import Candidate, ConfigError, Reason, RequestContext, Slot, StrategySetup


class StaffPicks:
    """Recommends ``product_ids`` in order (first is best), leaving out products that are
    inactive, out of stock, unknown, already in the cart or on the page."""

    def __init__(self, setup: StrategySetup) -> None:
        ids = setup.config["product_ids"]
        if not all(isinstance(pid, str) and pid for pid in ids):
            raise ConfigError("product_ids must be a list of product ids (non-empty strings)")
        self.ids: list[str] = list(dict.fromkeys(ids))
        self.reason = str(setup.config["reason"])

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        # One batched lookup through the request's catalog (shared by every strategy).
        products = await ctx.catalog.get_many(self.ids)
        skip = {line.product_id for line in ctx.cart_lines}
        if ctx.product_id:
            skip.add(ctx.product_id)
        picks = [
            pid
            for pid in self.ids
            if pid in products
            and products[pid].active
            and products[pid].in_stock
            and pid not in skip
        ]
        count = len(picks)
        return [
            Candidate(pid, score=float(count - rank), reasons=(Reason("STAFF_PICK", self.reason),))
            for rank, pid in enumerate(picks)
        ]
