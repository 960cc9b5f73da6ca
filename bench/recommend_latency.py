"""Does serving cost grow with the catalog? ``recommend()`` latency at 1,000 vs 100,000 products.

    python -m bench.recommend_latency [--small 1000] [--large 100000] [--requests 300]

For each catalog size, a seeded synthetic shop (`bench.synthetic`, ten events per product) is
generated and every built-in strategy fitted; then the same kinds of storefront requests (a
product page, a shopper with recent views and purchases, a session, a cart) are sent to each
strategy's ``recommend`` and to the default blend. Reported: median and 95th-percentile
latency per strategy and size, and the large/small ratio of the medians — the figure to read,
since absolute times on a shared machine are noisy. A ratio near 1 means the cost does not
grow with the catalog (neighbour lists and candidate pools are bounded).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
from shopfront.platform.config import Settings
from shopfront.platform.strategy_setup import StrategySetup
from shopfront.plugins.recommenders import SPECS
from shopfront.plugins.recommenders.blend import BlendPolicy, blend
from shopfront.recommend.contract import Candidate, Recommender, Slot, TrainingData
from shopfront.recommend.evaluation import MemoryCatalog
from shopfront.shoppers.context import CartLine, PageType, RequestContext
from shopfront.shoppers.profile_view import Profile, Purchase

from bench import synthetic

SEED = 5


async def fitted(n_products: int) -> tuple[dict[str, Recommender], TrainingData]:
    data = synthetic.training_data(n_products, 10 * n_products)
    built: dict[str, Recommender] = {}
    for spec in SPECS:
        setup = StrategySetup(
            spec.name,
            dict(spec.default_config),
            Settings(),
            None,  # type: ignore[arg-type]
            logging.getLogger(spec.name),
        )
        strategy = spec.factory(setup)
        fit = getattr(strategy, "fit", None)
        if fit is not None:
            await fit(data)
        built[spec.name] = strategy  # type: ignore[assignment]
    return built, data


def requests(data: TrainingData, count: int) -> list[RequestContext]:
    rng = np.random.default_rng(SEED)
    products = data.products
    events = data.interactions
    viewed = events.item[events.item >= 0]
    by_id = {p.id: p for p in products}
    catalog = MemoryCatalog(by_id)
    pages = [PageType.PRODUCT, PageType.HOME, PageType.CART]
    found = []
    for k in range(count):
        pick = [products[int(i)].id for i in rng.choice(viewed, 30)]
        profile = Profile(
            user_id=f"shopper{k}",
            as_of=synthetic.END,
            recently_viewed=tuple(dict.fromkeys(pick[:20])),
            purchases={
                pid: Purchase(int(rng.integers(1, 4)), synthetic.END - timedelta(days=9))
                for pid in pick[20:25]
            },
        )
        page = pages[k % len(pages)]
        product_id = pick[25] if page is PageType.PRODUCT else None
        cart = (pick[26], pick[27]) if page is PageType.CART else ()
        found.append(
            RequestContext(
                request_id=f"r{k}",
                now=synthetic.END,
                page=page,
                currency="EUR",
                catalog=catalog,
                user_id=profile.user_id,
                session_id=f"s{k}",
                product_id=product_id,
                cart_lines=tuple(CartLine(pid, 1) for pid in cart),
                profile=profile,
                session_recent=tuple(pick[28:30]),
                # The storefront loads the page's and the cart's products once per request.
                products={pid: by_id[pid] for pid in (product_id, *cart) if pid},
            )
        )
    return found


async def measure(
    recommenders: dict[str, Recommender],
    contexts: Sequence[RequestContext],
    products: dict[str, object],
) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {name: [] for name in [*recommenders, "blend"]}
    slot = Slot("bench", "Bench", tuple(recommenders), limit=10)
    for ctx in contexts:
        candidates: dict[str, Sequence[Candidate]] = {}
        for name, strategy in recommenders.items():
            started = time.perf_counter()
            candidates[name] = await strategy.recommend(ctx, slot)
            timings[name].append(time.perf_counter() - started)
        started = time.perf_counter()
        blend(ctx, slot, candidates, products, BlendPolicy())  # type: ignore[arg-type]
        timings["blend"].append(time.perf_counter() - started)
    return timings


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(0.95 * (len(ordered) - 1))] * 1000


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args(argv)
    results = {}
    for size in (args.small, args.large):
        started = time.perf_counter()
        recommenders, data = await fitted(size)
        print(
            f"{size:,} products: generated and fitted in {time.perf_counter() - started:.0f}s",
            file=sys.stderr,
            flush=True,
        )
        contexts = requests(data, args.requests)
        products = {p.id: p for p in data.products}
        await measure(recommenders, contexts[:20], products)  # warm up
        results[size] = await measure(recommenders, contexts, products)
    small, large = results[args.small], results[args.large]
    print(
        f"| strategy | p50 ms @{args.small:,} | p95 ms @{args.small:,} | "
        f"p50 ms @{args.large:,} | p95 ms @{args.large:,} | p50 ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name in small:
        s50, s95 = summary(small[name])
        l50, l95 = summary(large[name])
        print(
            f"| {name} | {s50:.2f} | {s95:.2f} | {l50:.2f} | {l95:.2f} | "
            f"{l50 / s50 if s50 else float('nan'):.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
