"""Staff picks: the merchant's own list, as a recommender."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shopfront import Candidate, Reason, RequestContext, Slot, StrategySetup, setting


@dataclass(frozen=True)
class StaffPicksConfig:
    """``[strategies.example_staff_picks]``: Shopfront checks the file against these types and
    bounds before the strategy is built, naming the setting and the value that do not fit."""

    enabled: bool = False  # needs the shop's own product ids: ships switched off
    product_ids: list[str] = setting(
        default_factory=list, doc="The picked products, best first.", max_len=200
    )
    reason: str = setting(
        "Picked by our staff", doc="Shown to the shopper with each pick.", min_len=1, max_len=80
    )


class StaffPicks:
    """Recommends ``product_ids`` in order (first is best), leaving out products that are
    inactive, out of stock, unknown, already in the cart or on the page."""

    def __init__(self, setup: StrategySetup) -> None:
        config = setup.config_as(StaffPicksConfig)
        self.ids = list(dict.fromkeys(pid for pid in config.product_ids if pid))
        self.reason = config.reason

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
