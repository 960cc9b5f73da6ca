"""What a shopper did, as weighted seeds for neighbour-based strategies.

Recent actions say more about what a shopper wants next than old ones: a seed's weight decays
with its recency rank (0 = most recent) as ``floor + (1 - floor) * 0.5 ** (rank / half_life)``.
Sources, in the order they count: the request's cart, this session's views, the profile's
recently viewed products, purchases (newest first) and ratings above two stars (no order:
they get ``floor``).

Only used with personalization consent: without it there is no history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shopfront import RequestContext

# How much each kind of action says about taste, before recency.
ACTION_WEIGHTS: dict[str, float] = {"carted": 1.0, "bought": 1.0, "rated": 1.0, "viewed": 0.8}
# Ratings of this many stars or fewer say "not for me": never a seed.
LOW_RATING = 2


@dataclass(frozen=True)
class Seed:
    """One product the shopper interacted with, how (for the reason text), and its weight."""

    product_id: str
    action: str  # "carted", "bought", "rated" or "viewed"
    weight: float


def recency_weight(rank: float, half_life: float, floor: float) -> float:
    return float(floor + (1.0 - floor) * 0.5 ** (rank / half_life))


def shopper_seeds(
    ctx: RequestContext,
    *,
    half_life: float,
    floor: float,
    limit: int,
    include_profile: bool = True,
) -> list[Seed]:
    """The shopper's seeds, strongest first, at most ``limit``; empty without consent."""
    if not personal(ctx):
        return []
    ranked: dict[str, tuple[float, str]] = {}  # product -> (best rank, action)

    def offer(product_ids: Sequence[str], action: str, ranked_source: bool = True) -> None:
        for rank, pid in enumerate(product_ids):
            r = float(rank) if ranked_source else float("inf")
            best = ranked.get(pid)
            if best is None or r < best[0] or (r == best[0] and _stronger(action, best[1])):
                ranked[pid] = (r, action)

    offer([line.product_id for line in ctx.cart_lines], "carted")
    offer(ctx.session_recent, "viewed")
    profile = ctx.profile if include_profile else None
    if profile is not None:
        offer(profile.recently_viewed, "viewed")
        by_recency = sorted(profile.purchases, key=lambda p: profile.purchases[p].last_at)
        offer(by_recency[::-1], "bought")
        liked = [pid for pid, stars in profile.ratings.items() if stars > LOW_RATING]
        offer(liked, "rated", ranked_source=False)
    seeds = [
        Seed(pid, action, ACTION_WEIGHTS[action] * recency_weight(rank, half_life, floor))
        for pid, (rank, action) in ranked.items()
    ]
    seeds.sort(key=lambda s: -s.weight)
    return seeds[:limit]


def personal(ctx: RequestContext) -> bool:
    """True when this request may use the shopper's data (consent given)."""
    return ctx.personalized and (ctx.profile is None or ctx.profile.consent_personalization)


def _stronger(a: str, b: str) -> bool:
    return ACTION_WEIGHTS[a] > ACTION_WEIGHTS[b]


def because(action: str, title: str) -> str:
    """The reason a shopper reads for a recommendation seeded by one of their actions."""
    return {
        "carted": f"Because {title} is in your cart",
        "bought": f"Because you bought {title}",
        "rated": f"Because you rated {title}",
        "viewed": f"Because you viewed {title}",
    }[action]
