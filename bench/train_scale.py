"""Training at scale: 100,000 products and 1,000,000 events on this machine's 2 cores.

    python -m bench.train_scale [--products 100000] [--events 1000000]

Generates a seeded synthetic shop (`bench.synthetic`), fits every built-in recommender the way
`shopfront train` does (one after another, each with its progress), encodes each fitted model
as the ``.npz`` artifact the registry stores, and reports per stage the wall time and the
process's peak resident memory (``resource.getrusage``: the high-water mark of the whole
process, generator included). Budget: under 10 minutes and 8 GB in total.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sys
import time
from collections.abc import Sequence

from shopfront.platform.config import Settings
from shopfront.platform.strategy_setup import StrategySetup
from shopfront.recommend.models import encode

from bench import synthetic

BUDGET_SECONDS = 600
BUDGET_BYTES = 8 * 1024**3


def peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    from shopfront.plugins.recommenders import SPECS

    started = time.perf_counter()
    data = synthetic.training_data(args.products, args.events)
    generated = time.perf_counter() - started
    print(
        f"generated {len(data.products):,} products, {len(data.interactions):,} events, "
        f"{data.interactions.n_users:,} shoppers in {generated:.1f}s "
        f"(peak {peak_bytes() / 1e9:.2f} GB)"
    )
    print(f"{'stage':<22} {'fit s':>8} {'artifact MB':>12} {'encode s':>9} {'peak GB':>8}")
    fit_total = 0.0
    for spec in SPECS:
        strategy = spec.factory(
            StrategySetup(
                spec.name,
                dict(spec.default_config),
                Settings(),
                None,  # type: ignore[arg-type]
                logging.getLogger(spec.name),
            )
        )
        fit = getattr(strategy, "fit", None)
        if fit is None:
            continue
        t0 = time.perf_counter()
        await fit(data)
        fit_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        blob = encode(strategy.dump_model())  # type: ignore[attr-defined]
        encode_s = time.perf_counter() - t1
        fit_total += fit_s + encode_s
        print(
            f"{spec.name:<22} {fit_s:8.1f} {len(blob) / 1e6:12.2f} {encode_s:9.1f} "
            f"{peak_bytes() / 1e9:8.2f}",
            flush=True,
        )
    total = time.perf_counter() - started
    peak = peak_bytes()
    print(
        f"\ntraining (fit + encode) {fit_total:.1f}s; with data generation {total:.1f}s; "
        f"peak memory {peak / 1e9:.2f} GB"
    )
    ok = fit_total < BUDGET_SECONDS and peak < BUDGET_BYTES
    print(
        f"budget (< {BUDGET_SECONDS / 60:.0f} min, < {BUDGET_BYTES / 1024**3:.0f} GB): "
        f"{'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
