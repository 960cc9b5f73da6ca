"""Recently viewed: the products this shopper looked at, newest first.

Merges this session's views with the profile's, leaves out the product on the page, and needs
no training. Personal data: nothing without personalization consent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shopfront import Candidate, RequestContext, Slot, StrategySetup
from shopfront.plugins.recommenders.base import candidate, pool_size
from shopfront.plugins.recommenders.config import knob
from shopfront.plugins.recommenders.history import personal

NAME = "recently_viewed"


@dataclass(frozen=True)
class RecentlyViewedConfig:
    include_session: bool = knob(True, "Include this session's views (anonymous visitors).")


class RecentlyViewed:
    def __init__(self, setup: StrategySetup) -> None:
        self.config = setup.config_as(RecentlyViewedConfig)

    async def recommend(self, ctx: RequestContext, slot: Slot) -> Sequence[Candidate]:
        if not personal(ctx):
            return []
        session = ctx.session_recent if self.config.include_session else ()
        profile = ctx.profile.recently_viewed if ctx.profile else ()
        newest_first = [pid for pid in dict.fromkeys((*session, *profile)) if pid != ctx.product_id]
        shown = newest_first[: pool_size(slot)]
        return [
            candidate(pid, 1.0 / (rank + 1), "RECENTLY_VIEWED", "You viewed this recently")
            for rank, pid in enumerate(shown)
        ]


def create(setup: StrategySetup) -> RecentlyViewed:
    return RecentlyViewed(setup)
