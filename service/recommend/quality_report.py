"""Signals a merchant can check on their own shop (``shopfront evaluate --report``).

Offline NDCG says whether the next thing a shopper did was ranked high; these say whether
what the HOME page shows looks right, on every sampled shopper, through the same strategies
and blend the storefront runs:

- ``viewed_same_department``: of the items explained "Because you viewed X", the share in
  X's department (the top level of its category path). Target: at least 0.8.
- ``for_you_shared_with_trending``: how many of the ``recommended_for_you`` slot's items the
  ``trending`` slot also shows, on average. Target: at most 3 of 10.
- ``top_first_share``: the share of shoppers whose ``recommended_for_you`` slot starts with
  the single most common first product. Target: at most 0.15.

Each shopper is asked at the end of the history, with the profile rebuilt from their events
(`shopfront.recommend.evaluation.build_cases` with no holdout).

`shop_report` puts them beside the offline metrics of every strategy and of the HOME blend as
it would be served after ``--tune`` (tuned on a holdout carved from the training part only,
then scored on the test part, the same truth as the tuner's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from shopfront.catalog.products import Product
from shopfront.platform.config import Settings
from shopfront.platform.store import Store
from shopfront.plugins.recommenders.blend import BlendPolicy, blend
from shopfront.recommend.contract import Candidate, Recommender, Slot, TrainingData
from shopfront.recommend.evaluation import (
    DEFAULT_BLEND,
    K_RECALL,
    POSITIVE,
    MemoryCatalog,
    Split,
    build_cases,
    configured_policy,
    context,
    evaluate,
    split_by_time,
    split_first_basket_after,
)
from shopfront.recommend.interactions import Interactions
from shopfront.recommend.tuning import MIN_PURCHASES, Tuning, learn_repeatability, tune

VIEWED = "Because you viewed "
TARGETS: Mapping[str, tuple[str, float]] = {
    "viewed_same_department": (">=", 0.8),
    "for_you_shared_with_trending": ("<=", 3.0),
    "top_first_share": ("<=", 0.15),
}


@dataclass(frozen=True)
class Signal:
    name: str
    value: float
    target: str
    ok: bool
    detail: str


async def home_signals(
    products: Sequence[Product],
    events: Interactions,
    recommenders: Mapping[str, Recommender],
    slots: Sequence[Slot],
    *,
    policy: BlendPolicy | None = None,
    tuning: Tuning | None = None,
    max_users: int = 500,
    seed: int = 0,
) -> list[Signal]:
    """The HOME signals of the module docstring, for fitted ``recommenders``."""
    tuning = tuning or Tuning()
    policy = policy or BlendPolicy()
    by_slot = {s.name: tuning.apply(s) for s in slots}
    for_you, trending = by_slot.get("recommended_for_you"), by_slot.get("trending")
    everyone = np.unique(events.user)
    end = float(events.timestamp.max()) if len(events) else 0.0
    split = Split(
        events,
        {int(u): frozenset({-1}) for u in everyone},
        dict.fromkeys((int(u) for u in everyone), end),
    )
    cases = build_cases(split, max_users=max_users, seed=seed, exclude_seen=False)
    by_id = {p.id: p for p in products}
    by_title: dict[str, set[str]] = {}
    for p in products:
        by_title.setdefault(p.title, set()).add(p.id)
    catalog = MemoryCatalog(by_id)
    currency = products[0].price.currency if products else "EUR"
    same = explained = 0
    shared: list[int] = []
    firsts: Counter[str] = Counter()
    for case in cases:
        ctx = context(case, catalog, currency)
        shown: dict[str, list[Candidate]] = {}
        for name, slot in (("for_you", for_you), ("trending", trending)):
            if slot is None:
                continue
            found = {
                n: await recommenders[n].recommend(ctx, slot)
                for n in slot.strategies
                if n in recommenders
            }
            shown[name] = blend(ctx, slot, found, by_id, policy)
        mine = shown.get("for_you", [])
        if mine:
            firsts[mine[0].product_id] += 1
        if "trending" in shown:
            popular = {c.product_id for c in shown["trending"]}
            shared.append(sum(c.product_id in popular for c in mine))
        for c in mine:
            for reason in c.reasons:
                if not reason.text.startswith(VIEWED):
                    continue
                seeds = by_title.get(reason.text.removeprefix(VIEWED), set())
                departments = {by_id[s].category_path[:1] for s in seeds}
                explained += 1
                same += by_id[c.product_id].category_path[:1] in departments
    values = {
        "viewed_same_department": same / explained if explained else 1.0,
        "for_you_shared_with_trending": sum(shared) / len(shared) if shared else 0.0,
        "top_first_share": max(firsts.values()) / len(cases) if firsts and cases else 0.0,
    }
    details = {
        "viewed_same_department": f"{same} of {explained} 'Because you viewed' items",
        "for_you_shared_with_trending": f"over {len(shared)} shoppers, slots of "
        f"{for_you.limit if for_you else 0}",
        "top_first_share": (
            f"{firsts.most_common(1)[0][0]} first for {firsts.most_common(1)[0][1]} of "
            f"{len(cases)} shoppers"
            if firsts
            else "no shoppers"
        ),
    }
    signals = []
    for name, value in values.items():
        op, bound = TARGETS[name]
        ok = value >= bound if op == ">=" else value <= bound
        signals.append(Signal(name, round(value, 4), f"{op} {bound:g}", ok, details[name]))
    return signals


@dataclass(frozen=True)
class ShopReport:
    rows: list[dict[str, float | str | int | None]]  # offline metrics, one row per ranker
    signals: list[Signal]
    tuning: Tuning
    truth: str


async def shop_report(
    store: Store,
    settings: Settings,
    slots: Sequence[Slot],
    *,
    test_fraction: float = 0.2,
    max_users: int = 500,
    progress: Callable[[str, float], None] | None = None,
) -> ShopReport:
    """Offline metrics (each strategy, the default blend, the tuned HOME blend) on a time
    split, and the HOME signals on the whole history (see the module docstring)."""
    from shopfront.recommend.fitting import builtin_recommenders, fit_all, load_training_data

    data = await load_training_data(
        store, window_days=settings.training_window_days, progress=progress
    )
    events = data.interactions
    if int(events.of_kinds("purchase").sum()) >= MIN_PURCHASES:
        split, truth = split_first_basket_after(events, test_fraction), "next basket"
    else:
        split, truth = split_by_time(events, test_fraction, POSITIVE), "next interactions"
    end = max(split.now.values(), default=data.window_end.timestamp())
    train = TrainingData(
        products=data.products,
        events=split.train,
        window_start=data.window_start,
        window_end=datetime.fromtimestamp(end, UTC),
        progress=progress,
    )
    policy = configured_policy(settings)
    tuning = await tune(train, builtin_recommenders(settings, store), slots, policy=policy)
    recommenders = builtin_recommenders(settings, store)
    fit_seconds = await fit_all(recommenders, train)
    cases = build_cases(
        split, max_users=max_users, exclude_seen=not tuning.repeatability.repeatable
    )
    blends: dict[str, Slot] = {"blend (fixed weights)": tuning.apply(DEFAULT_BLEND)}
    home = next((s for s in slots if s.name == "recommended_for_you"), None)
    if home is not None:
        blends["blend (HOME, tuned)"] = replace(tuning.apply(home), limit=K_RECALL)
    products = {p.id: p for p in data.products}
    rows = await evaluate(
        recommenders, cases, products, blends=blends, policy=policy, fit_seconds=fit_seconds
    )
    served = builtin_recommenders(settings, store)
    await fit_all(served, data)
    learned = Tuning(learn_repeatability(events, data.products), tuning.slots)
    signals = await home_signals(
        data.products, events, served, slots, policy=policy, tuning=learned, max_users=max_users
    )
    return ShopReport(rows, signals, learned, truth)


def signal_rows(signals: Sequence[Signal]) -> list[dict[str, Any]]:
    return [
        {"signal": s.name, "value": s.value, "target": s.target, "ok": s.ok, "detail": s.detail}
        for s in signals
    ]
