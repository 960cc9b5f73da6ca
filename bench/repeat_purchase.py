"""Repeat-purchase quality: the HOME page of a grocery-like shop against the obvious baselines.

    python -m bench.repeat_purchase [--quick] [--seed 5] [--json out.json]

The shop is synthetic with known rhythms (`bench.synthetic.repeat_shop`: shoppers re-buy
their staples every 1 to 6 trips and try a few new products). The truth is each shopper's
**next basket** (their last order); everything before it is training (`split_next_basket`).
Rows, all scored by NDCG@10 / HR@10 over the same shoppers, through the same metric code:

- ``popularity``: the shop's best sellers (``trending``), no personalization;
- ``own most-bought``: each shopper's own products by times bought (the one-line baseline);
- ``buy_again``: the strategy alone (own rhythm and frequency);
- ``HOME untuned``: the HOME page's ``recommended_for_you`` slot as shipped, with the blend's
  configured rules only (no learned repeatability): what a shop got before tuning;
- ``HOME tuned``: the same slot after ``shopfront evaluate --tune``: repeatability learned
  and strategies/weights chosen on a time-based holdout of the **training** data only, then
  every model refitted on all of the training data. The truth is touched once.

Ratios, not absolute times, are what compare across machines; the quality figures are exact
for a seed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shopfront.catalog.products import Product
from shopfront.platform.config import Settings
from shopfront.platform.strategy_setup import StrategySetup
from shopfront.plugins.recommenders import SPECS
from shopfront.plugins.recommenders.blend import BlendPolicy, blend
from shopfront.recommend.contract import Recommender, Slot, TrainingData
from shopfront.recommend.evaluation import (
    Case,
    MemoryCatalog,
    Scores,
    build_cases,
    candidates_of,
    context,
    split_next_basket,
)
from shopfront.recommend.fitting import fit_all
from shopfront.recommend.interactions import Interactions
from shopfront.recommend.tuning import tune

from bench.synthetic import repeat_shop

HOME = Slot(
    "recommended_for_you",
    "Recommended for you",
    ("recommended_for_you", "trending"),
    limit=10,
)


def recommenders() -> dict[str, Recommender]:
    """Fresh built-in strategies with their default configuration."""
    built: dict[str, Recommender] = {}
    for spec in SPECS:
        setup = StrategySetup(
            spec.name,
            dict(spec.default_config),
            Settings(),
            None,  # type: ignore[arg-type]  # the built-ins never touch the store
            logging.getLogger(spec.name),
        )
        built[spec.name] = spec.factory(setup)  # type: ignore[assignment]
    return built


def data_of(products: Sequence[Product], events: Interactions) -> TrainingData:
    return TrainingData(
        products=products,
        events=events,
        window_start=datetime.fromtimestamp(float(events.timestamp.min()), UTC),
        window_end=datetime.fromtimestamp(float(events.timestamp.max()) + 1, UTC),
    )


def own_most_bought(case: Case) -> list[str]:
    bought = case.profile.purchases
    return sorted(bought, key=lambda p: (-bought[p].count, -bought[p].last_at.timestamp(), p))


async def run(n_shoppers: int, n_products: int, seed: int, say: Any) -> dict[str, Any]:
    started = time.perf_counter()
    products, docs = repeat_shop(n_shoppers, n_products, seed=seed)
    events = Interactions.from_events(docs, [p.id for p in products])
    split = split_next_basket(events)
    train = data_of(products, split.train)
    say(f"shop: {len(products)} products, {len(events)} events, {len(split.test)} shoppers")

    tuning = await tune(train, recommenders(), [HOME])
    for line in tuning.report():
        say(f"  {line}")
    served = recommenders()
    await fit_all(served, train)
    cases = build_cases(split, exclude_seen=False)
    by_id = {p.id: p for p in products}
    catalog = MemoryCatalog(by_id)
    rows = {
        name: Scores(name)
        for name in ("popularity", "own most-bought", "buy_again", "HOME untuned", "HOME tuned")
    }
    tuned = tuning.apply(HOME)
    policy = BlendPolicy()
    for case in cases:
        found = await candidates_of(served, case, catalog, "EUR")
        ctx = context(case, catalog, "EUR")
        rows["popularity"].add([c.product_id for c in found["trending"]], case.relevant)
        rows["own most-bought"].add(own_most_bought(case), case.relevant)
        rows["buy_again"].add([c.product_id for c in found["buy_again"]], case.relevant)
        for label, slot in (("HOME untuned", HOME), ("HOME tuned", tuned)):
            mine = {n: found[n] for n in slot.strategies if n in found}
            ranked = blend(ctx, slot, mine, by_id, policy)
            rows[label].add([c.product_id for c in ranked], case.relevant)
    table = [s.row(len(products)) for s in rows.values()]
    return {
        "seed": seed,
        "shoppers": len(cases),
        "products": len(products),
        "events": len(events),
        "tuning": tuning.to_doc(),
        "rows": table,
        "seconds": round(time.perf_counter() - started, 1),
    }


def render(result: Mapping[str, Any]) -> str:
    lines = [
        f"Next-basket quality, synthetic repeat-purchase shop (seed {result['seed']}, "
        f"{result['shoppers']} shoppers, {result['products']} products, "
        f"{result['events']} events)",
        "",
        "| what was served | NDCG@10 | HR@10 | recall@20 |",
        "|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(f"| {row['name']} | {row['ndcg@10']} | {row['hr@10']} | {row['recall@20']} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="150 shoppers, 600 products")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", type=str, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    shoppers, items = (150, 600) if args.quick else (400, 1500)

    def say(text: str) -> None:
        print(text, file=sys.stderr)

    result = asyncio.run(run(shoppers, items, args.seed, say))
    print(render(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
