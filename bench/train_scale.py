"""Training at scale: 100,000 products and 1,000,000 events on this machine's 2 cores.

    python -m bench.train_scale [--products 100000] [--events 1000000]
    python -m bench.train_scale --embedded [--products 100000] [--events 1000000]

Generates a seeded synthetic shop (`bench.synthetic`), fits every built-in recommender the way
`shopfront train` does (one after another, each with its progress), encodes each fitted model
as the ``.npz`` artifact the registry stores, and reports per stage the wall time and the
process's peak resident memory (``resource.getrusage``: the high-water mark of the whole
process, generator included). Budget: under 10 minutes and 8 GB in total.

``--embedded`` first writes the shop into a throwaway embedded MongoDB server (SecantusDB) and
reads it back the way `shopfront train` does (`load_training_data`: keyed batches under the
job's own deadline) **with the default settings** -- the 5 s per-operation timeout included --
and reports the read's time and memory before fitting.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sys
import time
from collections.abc import Sequence
from typing import Any

from shopfront.platform.config import Settings
from shopfront.platform.strategy_setup import StrategySetup
from shopfront.recommend.contract import TrainingData
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
    parser.add_argument(
        "--embedded", action="store_true", help="write to and read from an embedded server"
    )
    args = parser.parse_args(argv)
    from shopfront.plugins.recommenders import SPECS

    started = time.perf_counter()
    data = synthetic.training_data(args.products, args.events)
    if args.embedded:
        data = await through_embedded_server(data)
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


async def through_embedded_server(data: TrainingData) -> TrainingData:
    """``data`` written to a throwaway embedded server, then read back by
    `load_training_data` with default settings (timed)."""
    from shopfront.platform.embedded import EmbeddedMongo
    from shopfront.platform.store import deadline, open_store
    from shopfront.recommend.fitting import load_training_data

    settings = Settings()
    with EmbeddedMongo(":memory:") as server:
        store = await open_store(settings, server.uri, "train_scale")
        try:
            t0 = time.perf_counter()
            with deadline(3600):  # the writer is not what is measured
                await store.products.insert_many([p.to_doc() for p in data.products])
                batch: list[dict[str, Any]] = []
                for n, event in enumerate(data.interactions):
                    batch.append({**event, "event_id": f"e{n}"})
                    if len(batch) == 5_000:
                        await store.collection("events").insert_many(batch)
                        batch = []
                if batch:
                    await store.collection("events").insert_many(batch)
            print(f"wrote the shop to the embedded server in {time.perf_counter() - t0:.1f}s")
            t1 = time.perf_counter()
            days = (data.window_end - data.window_start).days + 1
            loaded = await load_training_data(store, window_days=days, now=data.window_end)
            print(
                f"read {len(loaded.products):,} products and {len(loaded.interactions):,} events "
                f"with default settings in {time.perf_counter() - t1:.1f}s "
                f"(peak {peak_bytes() / 1e9:.2f} GB)"
            )
        finally:
            await store.close()
    return loaded


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
