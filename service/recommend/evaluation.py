"""Offline evaluation: does a strategy (or the blend) rank what shoppers did next?

1. **Split** the events in time: `split_by_time` (everything after a global cut is the test;
   what ``shopfront evaluate`` uses) or `split_per_user` (each shopper's last share of
   positive events is their test: the public benchmark protocol of ``bench/quality.py``).
2. **Fit** the strategies on the training part only.
3. For each test shopper, rebuild the **profile** they had at the cut (recently viewed,
   purchases, ratings, not interested) and ask each strategy, and the blend, for a ranking as
   the storefront would — through ``recommend`` and ``blend``, with the request time at the
   cut. Products the shopper already interacted with in training are removed from rankings
   (``exclude_seen``; turn it off to credit repeat purchases).
4. **Score** with binary relevance against the shopper's test products: NDCG@10, HR@10,
   recall@20, MAP@10, averaged over shoppers with at least one test product; catalog coverage
   is the share of active products that appear in anyone's top 10.
"""

from __future__ import annotations

import math
import tomllib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from shopfront.catalog.products import Product
from shopfront.platform.config import Settings
from shopfront.platform.store import Store
from shopfront.plugins.recommenders.blend import BlendPolicy, blend
from shopfront.recommend.contract import Candidate, Recommender, Slot, TrainingData
from shopfront.recommend.interactions import KIND, NONE, Interactions
from shopfront.shoppers.context import PageType, RequestContext
from shopfront.shoppers.profile_view import Profile, Purchase

POSITIVE: tuple[str, ...] = ("view", "click", "add_to_cart", "purchase", "rating", "review")
SEEN_AS_VIEWED: tuple[str, ...] = ("view", "click", "add_to_cart", "rating", "review")
RECENTLY_VIEWED_MAX = 50  # as the profile keeps it
K = 10
K_RECALL = 20

DEFAULT_BLEND = Slot(
    name="for_you",
    title="Recommended for you",
    strategies=("recommended_for_you", "also_viewed", "session", "buy_again", "trending"),
    limit=K_RECALL,
    weights={
        "recommended_for_you": 1.0,
        "also_viewed": 0.3,
        "session": 0.3,
        "buy_again": 0.5,
        "trending": 0.05,
    },
)


# -- splits --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Training events, and per test shopper (user index): test products and request time."""

    train: Interactions
    test: Mapping[int, frozenset[int]]
    now: Mapping[int, float]


def split_by_time(
    events: Interactions, test_fraction: float = 0.2, positive: Sequence[str] = POSITIVE
) -> Split:
    """Train on events before the time that leaves ``test_fraction`` of events after it."""
    if not len(events):
        return Split(events, {}, {})
    cut = float(np.quantile(events.timestamp, 1.0 - test_fraction))
    before = events.timestamp < cut
    known = set(np.unique(events.user[before]).tolist())
    after = ~before & events.of_kinds(*positive)
    test: dict[int, set[int]] = defaultdict(set)
    for user, item in zip(events.user[after].tolist(), events.item[after].tolist(), strict=True):
        if user in known:
            test[user].add(item)
    return Split(
        events.where(before), {u: frozenset(i) for u, i in test.items()}, dict.fromkeys(test, cut)
    )


def split_per_user(
    events: Interactions, test_fraction: float = 0.2, positive: Sequence[str] = POSITIVE
) -> Split:
    """Each shopper's last ``ceil(test_fraction * n)`` positive events (by time) are their
    test; their events from the first of those on are removed from training."""
    index = np.flatnonzero(events.of_kinds(*positive))
    users = events.user[index]
    order = np.lexsort((index, users))
    index, users = index[order], users[order]
    counts = np.bincount(users, minlength=events.n_users)
    n_test = np.ceil(test_fraction * counts).astype(np.int64)
    group_start = np.cumsum(counts) - counts
    from_end = counts[users] - 1 - (np.arange(len(users)) - group_start[users])
    is_test = from_end < n_test[users]
    boundary = np.full(events.n_users, np.iinfo(np.int64).max)
    np.minimum.at(boundary, users[is_test], index[is_test])
    keep = np.arange(len(events)) < boundary[events.user]
    test: dict[int, set[int]] = defaultdict(set)
    for user, item in zip(
        users[is_test].tolist(), events.item[index[is_test]].tolist(), strict=True
    ):
        test[user].add(item)
    has_train = np.bincount(events.user[keep], minlength=events.n_users) > 0
    now = {u: float(events.timestamp[boundary[u]]) for u in test if has_train[u]}
    return Split(events.where(keep), {u: frozenset(test[u]) for u in now}, now)


def split_next_basket(events: Interactions, min_baskets: int = 2) -> Split:
    """Each shopper's last basket is their test: the products of their latest order (an
    order id, else a shopper-day of purchases), asked for at that order's time. Shoppers with
    fewer than ``min_baskets`` baskets are left out; everything from the basket on is removed
    from training. The repeat-purchase protocol (``bench/repeat_purchase.py``)."""
    bought = np.flatnonzero(events.of_kinds("purchase"))
    if not len(bought):
        return Split(events, {}, {})
    user = events.user[bought].astype(np.int64)
    day = (events.timestamp[bought] // 86_400).astype(np.int64)
    order = events.order[bought].astype(np.int64)
    basket = np.where(order != NONE, order, -1 - day)  # loose purchases: one basket a day
    start = np.full(events.n_users, np.inf)
    first_row = np.full(events.n_users, len(events), dtype=np.int64)
    last_basket: dict[int, int] = {}
    baskets: dict[int, set[int]] = defaultdict(set)
    for u, b in zip(user.tolist(), basket.tolist(), strict=True):
        baskets[u].add(b)
        last_basket[u] = b  # rows are in time order: the last one seen is the latest basket
    for row, u, b in zip(bought.tolist(), user.tolist(), basket.tolist(), strict=True):
        if b == last_basket[u] and row < first_row[u]:
            first_row[u] = row
            start[u] = float(events.timestamp[row])
    test: dict[int, set[int]] = defaultdict(set)
    for row, u, b in zip(bought.tolist(), user.tolist(), basket.tolist(), strict=True):
        if len(baskets[u]) >= min_baskets and b == last_basket[u]:
            test[u].add(int(events.item[row]))
    keep = np.arange(len(events)) < first_row[events.user]
    return Split(
        events.where(keep),
        {u: frozenset(items) for u, items in test.items()},
        {u: float(start[u]) for u in test},
    )


def split_first_basket_after(events: Interactions, test_fraction: float = 0.2) -> Split:
    """A time-based holdout for shops that sell in baskets: train on the events before the
    time that leaves ``test_fraction`` of events after it; each shopper known before the cut
    is tested on their first basket after it (an order id, else a shopper-day), asked for at
    that basket's time: what they bought on their next visit."""
    if not len(events):
        return Split(events, {}, {})
    cut = float(np.quantile(events.timestamp, 1.0 - test_fraction))
    before = events.timestamp < cut
    known = np.zeros(events.n_users, dtype=bool)
    known[events.user[before]] = True
    after = np.flatnonzero(~before & events.of_kinds("purchase") & known[events.user])
    day = (events.timestamp[after] // 86_400).astype(np.int64)
    order = events.order[after].astype(np.int64)
    basket = np.where(order != NONE, order, -1 - day)
    first: dict[int, int] = {}
    now: dict[int, float] = {}
    test: dict[int, set[int]] = defaultdict(set)
    for row, b in zip(after.tolist(), basket.tolist(), strict=True):
        user = int(events.user[row])
        if first.setdefault(user, b) == b:
            now.setdefault(user, float(events.timestamp[row]) - 1.0)
            test[user].add(int(events.item[row]))
    return Split(events.where(before), {u: frozenset(i) for u, i in test.items()}, now)


# -- test cases ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One test shopper: the profile they had at the cut, and what they did next."""

    user: str
    now: datetime
    profile: Profile
    relevant: frozenset[str]
    seen: frozenset[str]


def build_cases(
    split: Split,
    *,
    max_users: int | None = None,
    seed: int = 0,
    exclude_seen: bool = True,
) -> list[Case]:
    """Profiles rebuilt from the training events, one per test shopper (a seeded sample of
    ``max_users`` when given)."""
    train = split.train
    users = sorted(split.test)
    if max_users is not None and len(users) > max_users:
        rng = np.random.default_rng(seed)
        users = sorted(rng.choice(users, size=max_users, replace=False).tolist())
    wanted = np.zeros(train.n_users, dtype=bool)
    wanted[users] = True
    rows = np.flatnonzero(wanted[train.user] & (train.item != NONE))
    by_user: dict[int, list[int]] = defaultdict(list)
    for row, user in zip(rows.tolist(), train.user[rows].tolist(), strict=True):
        by_user[user].append(row)
    viewed_kinds = {KIND[k] for k in SEEN_AS_VIEWED}
    cases = []
    for user in users:
        mine = by_user.get(user, [])
        recent: list[str] = []
        purchases: dict[str, Purchase] = {}
        ratings: dict[str, int] = {}
        not_interested: set[str] = set()
        for row in reversed(mine):  # newest first
            pid = train.item_ids[int(train.item[row])]
            kind = int(train.kind[row])
            when = datetime.fromtimestamp(float(train.timestamp[row]), UTC)
            if kind in viewed_kinds and pid not in recent and len(recent) < RECENTLY_VIEWED_MAX:
                recent.append(pid)
            if kind == KIND["purchase"]:
                known = purchases.get(pid)
                purchases[pid] = Purchase(
                    (known.count if known else 0) + 1, known.last_at if known else when, when
                )
            if kind == KIND["rating"]:
                ratings.setdefault(pid, int(train.rating[row]) or 5)
            if kind == KIND["not_interested"]:
                not_interested.add(pid)
        seen = {train.item_ids[int(train.item[r])] for r in mine}
        relevant = {train.item_ids[i] for i in split.test[user]}
        if exclude_seen:
            relevant -= seen
        if not relevant:
            continue
        now = datetime.fromtimestamp(split.now[user] + 1.0, UTC)
        profile = Profile(
            user_id=train.user_ids[user],
            as_of=now,
            recently_viewed=tuple(recent),
            purchases=purchases,
            ratings=ratings,
            not_interested=frozenset(not_interested),
            orders=len(purchases),
        )
        cases.append(
            Case(
                train.user_ids[user],
                now,
                profile,
                frozenset(relevant),
                frozenset(seen) if exclude_seen else frozenset(),
            )
        )
    return cases


# -- metrics -------------------------------------------------------------------------------


def ranking_metrics(ranked: Sequence[str], relevant: frozenset[str]) -> dict[str, float]:
    """NDCG@10, HR@10, recall@20 (share of the test products in the top 20), MAP@10."""
    hits = [pid in relevant for pid in ranked[:K_RECALL]]
    dcg = sum(1.0 / math.log2(i + 2) for i, hit in enumerate(hits[:K]) if hit)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), K)))
    found, precision_sum = 0, 0.0
    for i, hit in enumerate(hits[:K]):
        if hit:
            found += 1
            precision_sum += found / (i + 1)
    return {
        "ndcg@10": dcg / ideal if ideal else 0.0,
        "hr@10": 1.0 if any(hits[:K]) else 0.0,
        "recall@20": sum(hits) / len(relevant) if relevant else 0.0,
        "map@10": precision_sum / min(len(relevant), K) if relevant else 0.0,
    }


@dataclass
class Scores:
    """Mean metrics of one ranker over the cases."""

    name: str
    sums: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    users: int = 0
    shown: set[str] = field(default_factory=set)
    fit_seconds: float | None = None

    def add(self, ranked: Sequence[str], relevant: frozenset[str]) -> None:
        for metric, value in ranking_metrics(ranked, relevant).items():
            self.sums[metric] += value
        self.users += 1
        self.shown.update(ranked[:K])

    def row(self, catalog_size: int) -> dict[str, float | str | int | None]:
        means = {m: v / self.users if self.users else 0.0 for m, v in self.sums.items()}
        return {
            "name": self.name,
            **{m: round(means.get(m, 0.0), 4) for m in ("ndcg@10", "hr@10", "recall@20", "map@10")},
            "coverage": round(len(self.shown) / catalog_size, 4) if catalog_size else 0.0,
            "fit_seconds": None if self.fit_seconds is None else round(self.fit_seconds, 2),
            "users": self.users,
        }


# -- asking the strategies -----------------------------------------------------------------


class MemoryCatalog:
    """A `CatalogReader` over products already in memory."""

    def __init__(self, products: Mapping[str, Product]) -> None:
        self.products = products

    async def get_many(self, ids: Sequence[str]) -> Mapping[str, Product]:
        return {pid: self.products[pid] for pid in ids if pid in self.products}


def context(case: Case, catalog: MemoryCatalog, currency: str) -> RequestContext:
    return RequestContext(
        request_id=f"eval-{case.user}",
        now=case.now,
        page=PageType.HOME,
        currency=currency,
        catalog=catalog,
        user_id=case.user,
        profile=case.profile,
    )


async def candidates_of(
    recommenders: Mapping[str, Recommender],
    case: Case,
    catalog: MemoryCatalog,
    currency: str,
) -> dict[str, list[Candidate]]:
    """Each strategy's candidates for the case's shopper, seen products removed."""
    ctx = context(case, catalog, currency)
    found: dict[str, list[Candidate]] = {}
    for name, recommender in recommenders.items():
        pool = min(1000, K_RECALL + len(case.seen) + 30)
        slot = Slot(name, name, (name,), limit=K_RECALL, params={"pool": pool})
        proposed = await recommender.recommend(ctx, slot)
        found[name] = [c for c in proposed if c.product_id not in case.seen]
    return found


async def evaluate(
    recommenders: Mapping[str, Recommender],
    cases: Sequence[Case],
    products: Mapping[str, Product],
    *,
    blends: Mapping[str, Slot] | None = None,
    policy: BlendPolicy | None = None,
    fit_seconds: Mapping[str, float] | None = None,
) -> list[dict[str, float | str | int | None]]:
    """One row of mean metrics per strategy and per blend (see the module docstring)."""
    blends = {"blend": DEFAULT_BLEND} if blends is None else blends
    policy = policy or BlendPolicy()
    catalog = MemoryCatalog(products)
    currency = next(iter(products.values())).price.currency if products else "EUR"
    scores = {name: Scores(name) for name in [*recommenders, *blends]}
    for name, seconds in (fit_seconds or {}).items():
        if name in scores:
            scores[name].fit_seconds = seconds
    for case in cases:
        found = await candidates_of(recommenders, case, catalog, currency)
        for name, candidates in found.items():
            scores[name].add([c.product_id for c in candidates], case.relevant)
        ctx = context(case, catalog, currency)
        for label, slot in blends.items():
            mine = {n: found[n] for n in slot.strategies if n in found}
            ranked = blend(ctx, slot, mine, products, policy)
            scores[label].add([c.product_id for c in ranked], case.relevant)
    active = sum(1 for p in products.values() if p.active)
    return [s.row(active) for s in scores.values()]


# -- the shop's own evaluation (``shopfront evaluate``) --------------------------------------


async def evaluate_shop(
    store: Store,
    settings: Settings,
    *,
    per_user: bool = False,
    test_fraction: float = 0.2,
    max_users: int | None = 2000,
    exclude_seen: bool = True,
    progress: Callable[[str, float], None] | None = None,
) -> list[dict[str, float | str | int | None]]:
    """Split the shop's events in time, fit the built-in strategies on the earlier part, and
    score each strategy and the default blend on what shoppers did afterwards."""
    from shopfront.recommend.fitting import builtin_recommenders, fit_all, load_training_data

    data = await load_training_data(
        store, window_days=settings.training_window_days, progress=progress
    )
    splitter = split_per_user if per_user else split_by_time
    split = splitter(data.interactions, test_fraction)
    train = TrainingData(
        products=data.products,
        events=split.train,
        window_start=data.window_start,
        window_end=datetime.fromtimestamp(
            max(split.now.values(), default=data.window_end.timestamp()), UTC
        ),
        progress=progress,
    )
    recommenders = builtin_recommenders(settings, store)
    fit_seconds = await fit_all(recommenders, train)
    cases = build_cases(split, max_users=max_users, exclude_seen=exclude_seen)
    products = {p.id: p for p in data.products}
    return await evaluate(
        recommenders,
        cases,
        products,
        policy=configured_policy(settings),
        fit_seconds=fit_seconds,
    )


def configured_policy(settings: Settings) -> BlendPolicy:
    """The blend policy of ``[plugins.recommenders.blend]`` in the config file, if any."""
    from shopfront.plugins.recommenders.blend import parse_policy

    if settings.config_file is None:
        return BlendPolicy()
    with settings.config_file.open("rb") as fh:
        section = tomllib.load(fh).get("plugins", {}).get("recommenders", {})
    return parse_policy(section.get("blend", {}))
