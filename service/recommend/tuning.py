"""What the shop's own history says about how to serve it: repeatability and slot tuning.

Two things are learned at training time and saved with the model version, so every instance
serves them with the models they were chosen for:

1. **Repeatability** (`learn_repeatability`): the share of purchases that re-buy a product the
   same shopper bought before (on another day), for the whole shop and per category. In a
   category where it reaches ``REPEATABLE_SHARE`` -- or everywhere, in a shop where it reaches
   ``REPEATABLE_SHOP_SHARE`` overall (a grocery shop) -- bought products may be shown again;
   the blend reads the learned categories from each slot's ``params["repeatable_categories"]``
   (``"*"``: every category).
2. **Slot tuning** (`tune`): for each HOME slot that blends strategies (one of them
   personalized; the storefront passes its HOME page's slots), the strategies
   and blend weights that rank best on a **time-based holdout** of the shop's recent history
   (the models fitted on what came before the cut, scored with NDCG@10 on what each shopper
   did after it -- in a shop that sells, their first basket after the cut, asked for when
   they came back -- through the same `blend` the storefront runs). The search starts from the
   configured slot and from each strategy alone, and walks each weight over a small grid, so
   the chosen blend is never worse on the holdout than the configured slot or any single
   strategy. Every choice keeps a sentence that says why.

`Tuning.apply` turns configured slots into the served ones; the storefront calls it for the
configured slots of a request (before experiment overrides, which still win).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from shopfront.catalog.products import Product
from shopfront.plugins.recommenders.blend import (
    BUILTIN_NON_PERSONALIZED,
    EVERYTHING,
    BlendPolicy,
    blend,
)
from shopfront.plugins.recommenders.popularity import category_keys
from shopfront.recommend.contract import Candidate, Recommender, Slot, TrainingData
from shopfront.recommend.evaluation import (
    POSITIVE,
    Case,
    MemoryCatalog,
    build_cases,
    candidates_of,
    context,
    ranking_metrics,
    split_by_time,
    split_first_basket_after,
)
from shopfront.recommend.interactions import Interactions

# A category whose purchases re-buy this share or more is repeatable; a shop whose purchases
# do so overall at ``REPEATABLE_SHOP_SHARE`` is repeatable everywhere (a grocery shop).
REPEATABLE_SHARE = 0.2
REPEATABLE_SHOP_SHARE = 0.4
# Fewer purchases than this say nothing about a category.
MIN_PURCHASES = 20
# Strategies the tuner may add to a personalized slot (when the service has them).
PERSONAL_POOL: tuple[str, ...] = (
    "recommended_for_you",
    "buy_again",
    "also_viewed",
    "bought_together",
    "similar_items",
    "trending",
)
WEIGHT_GRID: tuple[float, ...] = (0.0, 0.1, 0.3, 1.0, 3.0)
ROUNDS = 2
NO_CAPS: Mapping[str, int] = {"max_per_category": 0, "max_per_brand": 0}
# A weight changes only for at least this relative gain on the holdout (not for noise).
MIN_GAIN = 0.01
SAME_DAY_S = 3_600.0  # lines of one checkout are not a re-buy


# -- repeatability ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Repeatability:
    """How much this shop's shoppers re-buy: overall and per category key."""

    purchases: int = 0
    repeat_share: float = 0.0  # share of purchases that re-buy the shopper's own product
    categories: Mapping[str, float] = field(default_factory=dict)
    repeatable: tuple[str, ...] = ()  # category keys, or ("*",) for the whole shop

    def to_doc(self) -> dict[str, Any]:
        return {
            "purchases": self.purchases,
            "repeat_share": self.repeat_share,
            "categories": {k.replace(".", "\uff0e"): v for k, v in self.categories.items()},
            "repeatable": list(self.repeatable),
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Repeatability:
        return cls(
            purchases=int(doc.get("purchases", 0)),
            repeat_share=float(doc.get("repeat_share", 0.0)),
            categories={
                str(k).replace("\uff0e", "."): float(v)
                for k, v in (doc.get("categories") or {}).items()
            },
            repeatable=tuple(str(k) for k in doc.get("repeatable", ())),
        )

    def describe(self) -> str:
        if not self.purchases:
            return "no purchases yet: bought products follow the configured rules"
        share = f"{self.repeat_share:.0%} of {self.purchases} purchases re-buy a product"
        if self.repeatable == (EVERYTHING,):
            return f"{share}: bought products may be shown again everywhere"
        if self.repeatable:
            return f"{share}; repeatable categories: {', '.join(self.repeatable)}"
        return f"{share}: bought products are not shown again soon"


def learn_repeatability(
    events: Interactions,
    products: Sequence[Product],
    *,
    threshold: float = REPEATABLE_SHARE,
    shop_threshold: float = REPEATABLE_SHOP_SHARE,
    min_purchases: int = MIN_PURCHASES,
) -> Repeatability:
    """The shop's re-buy shares, and what the blend may show again (see the module doc)."""
    bought = events.of_kinds("purchase")
    user, item, when = events.user[bought], events.item[bought], events.timestamp[bought]
    if not len(user):
        return Repeatability()
    order = np.lexsort((when, item, user))
    user, item, when = user[order], item[order], when[order]
    rebuy = np.r_[
        False, (user[1:] == user[:-1]) & (item[1:] == item[:-1]) & (np.diff(when) >= SAME_DAY_S)
    ]
    total = len(user)
    share = float(rebuy.sum()) / total
    counts: dict[str, list[int]] = {}
    n_catalog = len(products)
    for i, again in zip(item.tolist(), rebuy.tolist(), strict=True):
        if i >= n_catalog:
            continue
        for key in category_keys(products[i].category_path):
            tally = counts.setdefault(key, [0, 0])
            tally[0] += 1
            tally[1] += int(again)
    categories = {k: n_again / n for k, (n, n_again) in counts.items() if n >= min_purchases}
    if total >= min_purchases and share >= max(threshold, shop_threshold):
        repeatable: tuple[str, ...] = (EVERYTHING,)
    else:
        chosen = sorted(k for k, s in categories.items() if s >= threshold)
        # A parent already listed covers its children.
        repeatable = tuple(
            k for k in chosen if not any(k.startswith(p + " > ") for p in chosen if p != k)
        )
    return Repeatability(total, share, categories, repeatable)


# -- the tuning saved with a model version -------------------------------------------------


@dataclass(frozen=True)
class SlotChoice:
    """The strategies and weights chosen for one slot, its holdout scores, and why."""

    slot: str
    strategies: tuple[str, ...]
    weights: Mapping[str, float]
    ndcg: float
    configured_ndcg: float
    best_single: str
    best_single_ndcg: float
    why: str
    params: Mapping[str, Any] = field(default_factory=dict)  # blend settings for the slot

    def to_doc(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "strategies": list(self.strategies),
            "weights": dict(self.weights),
            "params": dict(self.params),
            "ndcg": self.ndcg,
            "configured_ndcg": self.configured_ndcg,
            "best_single": self.best_single,
            "best_single_ndcg": self.best_single_ndcg,
            "why": self.why,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> SlotChoice:
        return cls(
            slot=str(doc["slot"]),
            strategies=tuple(doc["strategies"]),
            weights={str(k): float(v) for k, v in doc["weights"].items()},
            ndcg=float(doc["ndcg"]),
            configured_ndcg=float(doc["configured_ndcg"]),
            best_single=str(doc.get("best_single", "")),
            best_single_ndcg=float(doc.get("best_single_ndcg", 0.0)),
            why=str(doc.get("why", "")),
            params=dict(doc.get("params") or {}),
        )


@dataclass(frozen=True)
class Tuning:
    """What training learned about serving this shop (saved in the model version)."""

    repeatability: Repeatability = field(default_factory=Repeatability)
    slots: tuple[SlotChoice, ...] = ()
    holdout: Mapping[str, Any] = field(default_factory=dict)

    def to_doc(self) -> dict[str, Any]:
        return {
            "repeatability": self.repeatability.to_doc(),
            "slots": [c.to_doc() for c in self.slots],
            "holdout": dict(self.holdout),
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> Tuning:
        if not doc:
            return cls()
        return cls(
            repeatability=Repeatability.from_doc(doc.get("repeatability") or {}),
            slots=tuple(SlotChoice.from_doc(c) for c in doc.get("slots", ())),
            holdout=dict(doc.get("holdout") or {}),
        )

    def choice(self, slot: str) -> SlotChoice | None:
        return next((c for c in self.slots if c.slot == slot), None)

    def apply(self, slot: Slot) -> Slot:
        """``slot`` as this tuning serves it: the chosen strategies and weights (if it was
        tuned), and the learned repeatable categories in its params (if any)."""
        chosen = self.choice(slot.name)
        if chosen is not None:
            slot = replace(
                slot,
                strategies=chosen.strategies,
                weights=dict(chosen.weights),
                params={**slot.params, **chosen.params},
            )
        learned = self.repeatability.repeatable
        if learned and "repeatable_categories" not in slot.params:
            slot = replace(slot, params={**slot.params, "repeatable_categories": list(learned)})
        return slot

    def report(self) -> list[str]:
        """What was chosen and why, one line each (for the CLI and the logs)."""
        lines = [f"repeat purchases: {self.repeatability.describe()}"]
        if self.holdout:
            h = self.holdout
            lines.append(
                f"holdout: the last {h.get('test_fraction', 0):.0%} of the history "
                f"(after {h.get('cut', '?')}), {h.get('shoppers', 0)} shoppers, "
                f"truth: {h.get('truth', '?')}"
            )
        for c in self.slots:
            weights = ", ".join(f"{n}={c.weights.get(n, 1.0):g}" for n in c.strategies)
            lines.append(f"slot {c.slot}: {weights} -- {c.why}")
        return lines


# -- the search ----------------------------------------------------------------------------


Progress = Callable[[str, float], None]


async def tune(
    data: TrainingData,
    recommenders: Mapping[str, Recommender],
    slots: Sequence[Slot],
    *,
    policy: BlendPolicy | None = None,
    personalized: Callable[[str], bool] = lambda name: name not in BUILTIN_NON_PERSONALIZED,
    test_fraction: float = 0.2,
    max_users: int = 500,
    seed: int = 0,
) -> Tuning:
    """Learn repeatability from ``data`` and choose each personalized slot's strategies and
    weights on a time-based holdout of it (see the module docstring).

    ``recommenders`` are fitted here on the part before the cut: pass instances that are not
    serving (`shopfront.recommend.training.builtin_recommenders` builds fresh ones).
    """
    from shopfront.recommend.fitting import fit_all

    events = data.interactions
    repeat = learn_repeatability(events, data.products)
    purchases = int(events.of_kinds("purchase").sum())
    if purchases >= MIN_PURCHASES:  # a shop that sells: the truth is the next basket
        split = split_first_basket_after(events, test_fraction)
        truth = "each shopper's first basket after the cut"
    else:
        split = split_by_time(events, test_fraction, positive=POSITIVE)
        truth = "what each shopper interacted with after the cut"
    holdout: dict[str, Any] = {"test_fraction": test_fraction, "truth": truth}
    # Slots that blend several strategies, one of them personal: a single-strategy slot
    # ("Recently viewed", "Trending now") keeps the promise of its title.
    tunable = [
        s for s in slots if len(s.strategies) > 1 and any(personalized(n) for n in s.strategies)
    ]
    if not split.test or not tunable:
        return Tuning(repeat, (), {**holdout, "shoppers": 0})
    cut = float(split.train.timestamp.max()) + 1.0 if len(split.train) else 0.0
    train = TrainingData(
        products=data.products,
        events=split.train,
        window_start=data.window_start,
        window_end=datetime.fromtimestamp(cut, UTC),
    )
    await fit_all(recommenders, train)
    cases = build_cases(split, max_users=max_users, seed=seed, exclude_seen=not repeat.repeatable)
    holdout.update(cut=datetime.fromtimestamp(cut, UTC).isoformat(), shoppers=len(cases))
    if not cases:
        return Tuning(repeat, (), holdout)
    products = {p.id: p for p in data.products}
    base = policy or BlendPolicy()
    choices = []
    for slot in tunable:
        pool = [n for n in dict.fromkeys((*slot.strategies, *PERSONAL_POOL)) if n in recommenders]
        if not pool:
            continue
        found = await _candidates({n: recommenders[n] for n in pool}, cases, products, slot.limit)
        scorer = _Scorer(slot, cases, found, products, base, repeat)
        choices.append(_search(slot, pool, scorer))
    return Tuning(repeat, tuple(choices), holdout)


async def _candidates(
    recommenders: Mapping[str, Recommender],
    cases: Sequence[Case],
    products: Mapping[str, Product],
    limit: int,
) -> list[dict[str, list[Candidate]]]:
    catalog = MemoryCatalog(products)
    currency = next(iter(products.values())).price.currency if products else "EUR"
    return [await candidates_of(recommenders, case, catalog, currency) for case in cases]


@dataclass
class _Scorer:
    """Mean NDCG@10 of one slot's blend over the holdout, for a weight vector (memoised)."""

    slot: Slot
    cases: Sequence[Case]
    found: Sequence[Mapping[str, Sequence[Candidate]]]
    products: Mapping[str, Product]
    policy: BlendPolicy
    repeat: Repeatability
    memo: dict[tuple[Any, ...], float] = field(default_factory=dict)

    def __call__(
        self, weights: Mapping[str, float], params: Mapping[str, Any] | None = None
    ) -> float:
        key = tuple(sorted((n, w) for n, w in weights.items() if w > 0))
        if not key:
            return 0.0
        extra = dict(params or {})
        memo_key = (key, tuple(sorted(extra.items())))
        if memo_key not in self.memo:
            served = Tuning(self.repeat).apply(
                replace(
                    self.slot,
                    strategies=tuple(n for n, _ in key),
                    weights=dict(key),
                    params={**self.slot.params, **extra},
                )
            )
            catalog = MemoryCatalog(self.products)
            total = 0.0
            for case, found in zip(self.cases, self.found, strict=True):
                ctx = context(case, catalog, _currency(self.products))
                mine = {n: found[n] for n in served.strategies if n in found}
                ranked = blend(ctx, served, mine, self.products, self.policy)
                total += ranking_metrics([c.product_id for c in ranked], case.relevant)["ndcg@10"]
            self.memo[memo_key] = total / len(self.cases)
        return self.memo[memo_key]


def _currency(products: Mapping[str, Product]) -> str:
    return next(iter(products.values())).price.currency if products else "EUR"


def _search(slot: Slot, pool: Sequence[str], score: _Scorer) -> SlotChoice:
    configured = {n: float(slot.weights.get(n, 1.0)) for n in slot.strategies}
    configured_ndcg = score(configured)
    singles = {n: score({n: 1.0}) for n in pool}
    best_single = max(singles, key=lambda n: (singles[n], n == slot.strategies[0]))
    starts = [configured, {best_single: 1.0}]
    best = max(starts, key=score)
    weights = {n: best.get(n, 0.0) for n in pool}
    for _ in range(ROUNDS):
        improved = False
        for name, value in itertools.product(pool, WEIGHT_GRID):
            trial = {**weights, name: value}
            if score(trial) > score(weights) * (1 + MIN_GAIN) + 1e-9:
                weights, improved = trial, True
        if not improved:
            break
    chosen = {n: w for n, w in weights.items() if w > 0}
    ndcg = score(chosen)
    # The diversity caps are blend settings too: lifted for this slot only when that ranks
    # clearly better (a shopper's own staples often share a category).
    params: dict[str, Any] = {}
    if score(chosen, NO_CAPS) > ndcg * (1 + MIN_GAIN) + 1e-9:
        params, ndcg = dict(NO_CAPS), score(chosen, NO_CAPS)
    kept = ", ".join(f"{n} {w:g}" for n, w in sorted(chosen.items(), key=lambda i: -i[1]))
    caps = "; diversity caps lifted" if params else ""
    why = (
        f"NDCG@10 {ndcg:.4f} on the holdout with {kept}{caps}; as configured "
        f"{configured_ndcg:.4f}; best single strategy {best_single} {singles[best_single]:.4f}"
    )
    ordered = tuple(sorted(chosen, key=lambda n: (-chosen[n], n)))
    return SlotChoice(
        slot=slot.name,
        strategies=ordered,
        weights={n: chosen[n] for n in ordered},
        ndcg=round(ndcg, 6),
        configured_ndcg=round(configured_ndcg, 6),
        best_single=best_single,
        best_single_ndcg=round(singles[best_single], 6),
        why=why,
        params=params,
    )
