"""Simulated experiment traffic: the demo's running experiment, and the tests' known truths.

`simulate_traffic` plays shoppers through an experiment with known per-variant rates: each
shopper is assigned exactly as the storefront would (`place_in_layer`), gets a first-exposure
document, sees the experiment's slot a few times (recommendation and exposure documents),
clicks items with the variant's click rate, and converts with its conversion rate, some
buying a product they clicked without quoting the recommendation (so the last-click rule
credits it). Documents are built with the same builders the live path uses and written in
bulk; clicks and purchases then go through `attribute_events`. Deterministic for a seed.

`simulate_experiment` is what the demo seeding calls: it creates and starts "home-recs-v2"
(the current home blend against one leaning on the shopper's own signals, plus a holdout
with no personalization) a week in the past and simulates that week, so `experimentReport`
shows meaningful numbers on first start.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shopfront.experiments.assignment import Assignment, place_in_layer
from shopfront.experiments.attribution import RECOMMENDATIONS, attribute_events
from shopfront.experiments.definitions import (
    ASSIGNMENTS,
    EXPERIMENTS,
    EXPOSURES,
    ErrorCode,
    Experiment,
    ExperimentError,
)
from shopfront.experiments.exposure import (
    ServedItem,
    ServedSlot,
    assignment_document,
    slot_exposure_document,
)
from shopfront.experiments.lifecycle import create_experiment, start_experiment
from shopfront.platform.store import Store

DEMO_EXPERIMENT = "home-recs-v2"
DEMO_EXPERIMENT_ID = "exp_demo_home_recs_v2"
DEMO_SLOT = "recommended_for_you"
DEMO_STRATEGIES = ("recommended_for_you", "trending")
_BATCH = 1000


@dataclass(frozen=True)
class VariantRates:
    """What a variant truly does to shoppers in the simulation.

    ``ctr``: chance each shown item is clicked; ``conversion``: chance an exposed shopper
    buys (once) during the experiment; ``buys_clicked``: chance a buyer who clicked buys a
    clicked product (credited by last click) rather than something else.
    """

    ctr: float = 0.0
    conversion: float = 0.0
    buys_clicked: float = 0.5


@dataclass(frozen=True)
class TrafficSummary:
    exposed: Mapping[str, int]  # shoppers per variant
    converted: Mapping[str, int]
    impressions: int
    clicks: int
    purchases: int  # purchase lines
    orders: int


@dataclass(frozen=True)
class _Product:
    id: str
    price: int


@dataclass
class _Batch:
    assignments: list[dict[str, Any]] = field(default_factory=list)
    recommendations: list[dict[str, Any]] = field(default_factory=list)
    exposures: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


async def _catalog_sample(store: Store, currency: str, limit: int = 200) -> list[_Product]:
    docs = (
        await store.products.find(
            {"active": True, "price.currency": currency}, {"id": 1, "price": 1}
        )
        .sort("id", 1)
        .limit(limit)
        .to_list(None)
    )
    found = [_Product(d["id"], int(d["price"]["amount"])) for d in docs]
    if found:
        return found
    # No catalog (a bare database): stand-in products with plausible prices.
    rng = random.Random(0)
    return [_Product(f"sim-product-{i:03d}", rng.randrange(900, 12000, 100)) for i in range(60)]


def _event(
    event_id: str,
    type_: str,
    at: datetime,
    user_id: str | None,
    session_id: str,
    **fields: Any,
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": event_id,
        "type": type_,
        "user_id": user_id,
        "session_id": session_id,
        "timestamp": at,
        "product_id": None,
        "quantity": None,
        "price": None,
        "order_id": None,
        "recommendation_id": None,
        "position": None,
        "page_type": None,
    }
    base.update(fields)
    return base


async def _insert(store: Store, name: str, docs: list[dict[str, Any]]) -> None:
    for i in range(0, len(docs), _BATCH):
        await store.collection(name).insert_many(docs[i : i + _BATCH], ordered=False)


async def simulate_traffic(
    store: Store,
    experiment: Experiment,
    shoppers: Sequence[str],
    rates: Mapping[str, VariantRates],
    *,
    start: datetime,
    end: datetime,
    seed: int,
    visits: tuple[int, int] = (1, 2),
    items_per_slot: int = 5,
    log_impressions: bool = True,
    anonymous: Sequence[str] = (),
    window_hours: int = 24,
    now: datetime | None = None,
) -> TrafficSummary:
    """Simulate ``shoppers`` (user ids) and ``anonymous`` visitors (session ids) between
    ``start`` and ``end`` under ``experiment`` with the given per-variant ``rates``.

    With ``log_impressions=False`` only assignments and purchases are written (the
    statistical tests need nothing else, and it keeps them fast).
    """
    if experiment.bucket_range is None:
        raise ValueError("the experiment has not started: it has no traffic range")
    missing = sorted({v.name for v in experiment.variants} - set(rates))
    if missing:
        raise ValueError(f"no simulated rates for variants {', '.join(missing)}")
    rng = random.Random(seed)
    products = await _catalog_sample(store, experiment.currency)
    by_id = {p.id: p for p in products}
    span = (end - start).total_seconds()
    batch = _Batch()
    exposed: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    impressions = clicks = purchases = orders = 0
    people = [(key, key) for key in shoppers] + [(None, key) for key in anonymous]
    for user_id, key in people:
        placed = place_in_layer(experiment.layer, [experiment], key)
        if placed is None:
            continue
        exp, variant = placed
        assignment = Assignment.of(exp, variant)
        r = rates[variant.name]
        session_id = key if user_id is None else f"{key}-sim"
        # First exposure in the first 80% of the window, so every shopper has time to act.
        first = start + timedelta(seconds=rng.uniform(0, span * 0.8))
        batch.assignments.append(assignment_document(assignment, key, user_id, session_id, first))
        exposed[variant.name] += 1
        clicked: list[tuple[datetime, str]] = []
        at = first
        for visit in range(rng.randint(*visits)):
            if visit:
                at += timedelta(hours=rng.uniform(2, 30))
            if at >= end:
                break
            if not log_impressions:
                continue
            rec_id = f"sim-{exp.id}-{key}-{visit}"
            shown = rng.sample(products, min(items_per_slot, len(products)))
            items = tuple(
                ServedItem(p.id, DEMO_STRATEGIES[pos % len(DEMO_STRATEGIES)], pos)
                for pos, p in enumerate(shown, start=1)
            )
            slot = ServedSlot(rec_id, DEMO_SLOT, items)
            batch.exposures.append(
                slot_exposure_document(
                    slot, f"sim-req-{rec_id}", user_id, session_id, 1.0, assignment, at
                )
            )
            batch.recommendations.append(
                {
                    "_id": rec_id,
                    "request_id": f"sim-req-{rec_id}",
                    "user_id": user_id,
                    "session_id": session_id,
                    "page": "HOME",
                    "slot": DEMO_SLOT,
                    "strategies": list(DEMO_STRATEGIES),
                    "items": [
                        {
                            "product_id": i.product_id,
                            "position": i.position,
                            "score": 1.0 / i.position,
                            "strategy": i.strategy,
                        }
                        for i in items
                    ],
                    "experiment": exp.id,
                    "variant": variant.name,
                    "created_at": at,
                }
            )
            impressions += len(items)
            for item in items:
                if rng.random() < r.ctr:
                    click_at = at + timedelta(seconds=rng.uniform(5, 600))
                    batch.events.append(
                        _event(
                            f"sim-{exp.id}-{key}-c{len(batch.events)}",
                            "click",
                            click_at,
                            user_id,
                            session_id,
                            product_id=item.product_id,
                            recommendation_id=rec_id,
                            position=item.position,
                            page_type="home",
                        )
                    )
                    clicked.append((click_at, item.product_id))
                    clicks += 1
        if rng.random() >= r.conversion:
            continue
        paid_at = min(first + timedelta(hours=rng.uniform(0.5, 36)), end - timedelta(seconds=1))
        earlier = [pid for t, pid in clicked if t <= paid_at]
        if earlier and rng.random() < r.buys_clicked:
            lines = [earlier[-1]]
        else:
            lines = [rng.choice(products).id]
        if rng.random() < 0.3:
            lines.append(rng.choice(products).id)
        order_id = f"sim-{exp.id}-{key}-order"
        for n, pid in enumerate(dict.fromkeys(lines)):
            batch.events.append(
                _event(
                    f"sim-{exp.id}-{key}-p{n}",
                    "purchase",
                    paid_at,
                    user_id,
                    session_id,
                    product_id=pid,
                    quantity=rng.choice((1, 1, 1, 2)),
                    price={"amount": by_id[pid].price, "currency": exp.currency},
                    order_id=order_id,
                    page_type="checkout",
                )
            )
            purchases += 1
        orders += 1
        converted[variant.name] += 1

    await _insert(store, ASSIGNMENTS, batch.assignments)
    await _insert(store, RECOMMENDATIONS, batch.recommendations)
    await _insert(store, EXPOSURES, batch.exposures)
    await _insert(store, "events", batch.events)
    if log_impressions:
        ordered = sorted(batch.events, key=lambda e: e["timestamp"])
        for i in range(0, len(ordered), _BATCH):
            await attribute_events(
                store,
                ordered[i : i + _BATCH],
                window_hours=window_hours,
                now=now or datetime.now(UTC),
            )
    return TrafficSummary(
        exposed=dict(exposed),
        converted=dict(converted),
        impressions=impressions,
        clicks=clicks,
        purchases=purchases,
        orders=orders,
    )


def demo_definition(currency: str = "EUR") -> dict[str, Any]:
    """The demo experiment: the current home blend, a blend leaning on the shopper's own
    signals, and a holdout with no personalization (the honest baseline)."""
    return {
        "name": DEMO_EXPERIMENT,
        "description": "Home page 'Recommended for you': does leaning the blend on the "
        "shopper's own signals sell more than the current blend? A 10% holdout sees no "
        "personalization at all.",
        # Every demo shopper is in it, so whichever one a new user tries shows a variant.
        "traffic": 1.0,
        "layer": "default",
        "currency": currency,
        "variants": [
            {"name": "control", "weight": 45, "control": True},
            {
                "name": "personal-blend",
                "weight": 45,
                "slots": [
                    {
                        "slot": DEMO_SLOT,
                        "strategies": list(DEMO_STRATEGIES),
                        "weights": {"recommended_for_you": 0.8, "trending": 0.2},
                    }
                ],
            },
            {"name": "holdout", "weight": 10, "personalization": False},
        ],
    }


DEMO_RATES: Mapping[str, VariantRates] = {
    "control": VariantRates(ctr=0.05, conversion=0.05),
    "personal-blend": VariantRates(ctr=0.065, conversion=0.085),
    "holdout": VariantRates(ctr=0.03, conversion=0.035),
}


@dataclass(frozen=True)
class DemoExperiment:
    experiment: Experiment
    traffic: TrafficSummary


async def simulate_experiment(
    store: Store,
    *,
    now: datetime | None = None,
    shoppers: int | Sequence[str] = 300,
    visitors: int = 2500,
    days: int = 7,
    seed: int = 11,
    currency: str = "EUR",
    window_hours: int = 24,
) -> DemoExperiment | None:
    """Create, start (``days`` ago) and simulate the demo experiment for the demo shoppers
    (``demo-0001``... when ``shoppers`` is a count) and ``visitors`` anonymous sessions.

    Returns None, doing nothing, when an experiment of that name already exists (a second
    start of the demo, or another instance got there first).
    """
    now = now or datetime.now(UTC)
    if await store.collection(EXPERIMENTS).find_one({"name": DEMO_EXPERIMENT}, {"_id": 1}):
        return None
    began = now - timedelta(days=days)
    try:
        created = await create_experiment(
            store, demo_definition(currency), now=began, experiment_id=DEMO_EXPERIMENT_ID
        )
    except ExperimentError as exc:
        if exc.code is ErrorCode.CONFLICT:
            return None
        raise
    try:
        started = await start_experiment(store, created.id, now=began)
    except ExperimentError:
        return None  # another running experiment holds the traffic: leave the draft be
    users = (
        [f"demo-{n:04d}" for n in range(1, shoppers + 1)]
        if isinstance(shoppers, int)
        else list(shoppers)
    )
    anonymous = [f"demo-visitor-{n:05d}" for n in range(1, visitors + 1)]
    traffic = await simulate_traffic(
        store,
        started,
        users,
        DEMO_RATES,
        start=began,
        end=now,
        seed=seed,
        anonymous=anonymous,
        window_hours=window_hours,
        now=now,
    )
    return DemoExperiment(started, traffic)
