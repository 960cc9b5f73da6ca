"""Storefront benchmark: queries per second and latency of the composed `storefront` query at
16 concurrent connections, next to a bare `products(first: N)` query returning the same number
of products (the same products, by id) through the same server, in the same run. The figure
that matters is the ratio.

    python -m bench.storefront [--products 2000] [--concurrency 16] [--seconds 10]

It starts the embedded MongoDB (or uses SHOPFRONT_MONGODB_URI), seeds a generated catalog and
a few shoppers with carts, serves the app under uvicorn in a child process, and drives it with
httpx from this one. Phases alternate (storefront, bare, storefront, bare) so drift on a shared
machine hits both. When the built-in recommenders are not installed, the HOME slots are served
by the small strategies in `bench.storefront_plugin`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from shopfront.catalog.products import upsert_products
from shopfront.extend.config import config_from_mapping
from shopfront.platform.config import Settings, token_secrets
from shopfront.platform.embedded import EmbeddedMongo, free_port
from shopfront.platform.keys import Role, create_key
from shopfront.platform.store import open_store
from shopfront.shoppers.identity import MAX_TTL_S, ShopperTokens

CATEGORIES = ["Shoes", "Apparel", "Outdoor", "Home", "Electronics", "Toys", "Beauty", "Sports"]
BRANDS = ["Stride", "Northwind", "Acme", "Lumen", "Kestrel", "Orbit"]
PRODUCT_FIELDS = "id title brand price { amount currency } imageUrl inStock"

STOREFRONT = """
query($input: StorefrontInput!) { storefront(input: $input) {
  requestId
  slots { name title recommendationId
          items { position score product { PRODUCT_FIELDS } reasons { code text strategy } } }
  coupons { code title expiresAt reason { code text strategy } }
  cart { subtotal { amount currency } discountTotal { amount currency } total { amount currency }
         appliedPromotions { name amount { amount currency } } nudges { text } }
  degraded { strategy reason }
} }
""".replace("PRODUCT_FIELDS", PRODUCT_FIELDS)
BARE = (
    "query($ids: [ID!], $n: Int!) { products(filter: {ids: $ids}, first: $n) { nodes { "
    + PRODUCT_FIELDS
    + " } } }"
)

BENCH_SLOTS = {
    "HOME": [
        {"name": "for_you", "strategies": ["bench_category", "bench_popular"]},
        {"name": "trending", "strategies": ["bench_popular"]},
        {"name": "more_like_this", "strategies": ["bench_category"]},
    ]
}
# The throwaway benchmark service's shopper-token secret (its database is dropped afterwards).
BENCH_TOKEN_SECRET = "bench:shopfront-benchmark-token-secret-0123456789"
BUILTIN_HOME = ("recommended_for_you", "trending", "recently_viewed")


def generate_products(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        top = rng.choice(CATEGORIES)
        out.append(
            {
                "id": f"p{i:05d}",
                "title": f"{rng.choice(BRANDS)} {top.lower()} item {i}",
                "description": "Generated for the storefront benchmark.",
                "category_path": [top, f"{top} {rng.randint(1, 6)}"],
                "brand": rng.choice(BRANDS),
                "tags": [rng.choice(["new", "sale", "eco", "classic"])],
                "price": {"amount": rng.randint(500, 20000), "currency": "EUR"},
                "stock": rng.choice([0, 1, 3, 8, 20, 50]),
                "image_url": f"https://img.example/{i}.jpg",
            }
        )
    return out


async def seed_behaviour(
    store: Any, settings: Settings, products: list[dict[str, Any]], shoppers: int
) -> None:
    """Shoppers' histories through the real ingestion, then one training run, so the built-in
    recommenders serve what they would in a live shop."""
    from shopfront.demo.data import generate_history
    from shopfront.recommend.training import builtin_recommenders, train
    from shopfront.shoppers.events import ingest_events

    history = sorted(
        generate_history(products, n_shoppers=shoppers),
        key=lambda e: (e["user_id"] or "", e["timestamp"]),
    )
    await ingest_events(store, settings, history)
    await train(store, settings, builtin_recommenders(settings, store))


def shopper_inputs(
    products: list[dict[str, Any]], shoppers: int, seed: int = 11
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    stocked = [p["id"] for p in products if p["stock"] > 0]
    inputs = []
    for s in range(shoppers):
        lines = [
            {"productId": pid, "quantity": rng.randint(1, 3)}
            for pid in rng.sample(stocked, rng.randint(1, 3))
        ]
        inputs.append(
            {
                "userId": f"demo-{s + 1:04d}",  # the shoppers `seed_behaviour` gives a history
                "page": "HOME",
                "cart": {"lines": lines, "couponCodes": []},
            }
        )
    return inputs


# -- the server (child process) ------------------------------------------------------------


def serve(uri: str, database: str, port: int) -> None:
    import uvicorn
    from shopfront.app import create_app
    from shopfront.extend.host import BUILTIN_PLUGINS

    from bench import storefront_plugin

    settings = Settings.from_env(
        {},
        mongodb_uri=uri,
        mongodb_database=database,
        port=port,
        log_level="WARNING",
        plugins_entry_points=False,  # measure the service, not whatever else is installed
        shopper_token_secrets=(BENCH_TOKEN_SECRET,),
    )
    builtin_home = "shopfront.plugins.recommenders" in BUILTIN_PLUGINS
    config = config_from_mapping({} if builtin_home else {"slots": BENCH_SLOTS})
    app = create_app(settings, plugins=[("bench", storefront_plugin)], plugin_config=config)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- the load generator --------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    latencies: list[float]
    seconds: float
    errors: int

    @property
    def qps(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def merge(self, other: Phase) -> Phase:
        return Phase(
            self.name,
            self.latencies + other.latencies,
            self.seconds + other.seconds,
            self.errors + other.errors,
        )


async def drive(
    client: httpx.AsyncClient,
    name: str,
    payload: Callable[[int], tuple[dict[str, Any], dict[str, str]]],
    concurrency: int,
    seconds: float,
) -> Phase:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal errors
        i = w
        while time.perf_counter() < stop:
            started = time.perf_counter()
            body, headers = payload(i)
            resp = await client.post("/graphql", json=body, headers=headers)
            elapsed = time.perf_counter() - started
            answer = resp.json()
            if resp.status_code != 200 or answer.get("errors"):
                errors += 1
            else:
                latencies.append(elapsed)
            i += concurrency

    began = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return Phase(name, latencies, time.perf_counter() - began, errors)


def start_server(uri: str, database: str, port: int) -> subprocess.Popen[bytes]:
    """The app in a child process (its own interpreter: the load generator does not share it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "bench.storefront", "--serve", uri, database, str(port)],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


async def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=base) as c:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited during start-up (code {proc.returncode})")
            try:
                if (await c.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("the server did not become ready")


async def run(args: argparse.Namespace, uri: str) -> None:
    database = f"bench_{uuid.uuid4().hex[:8]}"
    # seeding is bulk work: give it a longer per-operation deadline than serving gets
    settings = Settings.from_env(
        {}, mongodb_uri=uri, mongodb_database=database, mongo_operation_timeout_ms=120_000
    )
    store = await open_store(settings, uri)
    products = generate_products(args.products)
    for start in range(0, len(products), 250):
        await upsert_products(store, products[start : start + 250])
    await seed_behaviour(store, settings, products, args.shoppers)
    _, key = await create_key(store, Role.STOREFRONT, "bench")
    inputs = shopper_inputs(products, args.shoppers)

    port = free_port()
    proc = start_server(uri, database, port)
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base, proc)
        limits = httpx.Limits(
            max_connections=args.concurrency, max_keepalive_connections=args.concurrency
        )
        headers = {"authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            base_url=base, headers=headers, limits=limits, timeout=30
        ) as c:
            # Each shopper's storefront request carries the token their session would hold.
            signer = ShopperTokens(token_secrets((BENCH_TOKEN_SECRET,)))
            tokens = [
                {"x-shopper-token": signer.mint(str(i["userId"]), ttl_seconds=MAX_TTL_S)[0]}
                for i in inputs
            ]
            probe = (
                await c.post(
                    "/graphql",
                    json={"query": STOREFRONT, "variables": {"input": inputs[0]}},
                    headers=tokens[0],
                )
            ).json()
            if probe.get("errors"):
                raise SystemExit(f"storefront query failed: {probe['errors']}")
            answer = probe["data"]["storefront"]
            shown = [i["product"]["id"] for s in answer["slots"] for i in s["items"]]
            n = len(shown)
            if answer["degraded"]:
                print(f"warning: degraded strategies: {answer['degraded']}", file=sys.stderr)
            if n == 0:
                raise SystemExit("the storefront returned no products: nothing to compare")

            def storefront(i: int) -> tuple[dict[str, Any], dict[str, str]]:
                k = i % len(inputs)
                return {"query": STOREFRONT, "variables": {"input": inputs[k]}}, tokens[k]

            # The same products by id (padded with others to as many products as the storefront
            # shows items): one indexed read of the same size through the same stack.
            ids = list(dict.fromkeys(shown))
            ids += [p["id"] for p in products if p["id"] not in set(ids)][: n - len(ids)]

            def bare(i: int) -> tuple[dict[str, Any], dict[str, str]]:
                return {"query": BARE, "variables": {"ids": ids, "n": n}}, {}

            await drive(c, "warm-up", storefront, args.concurrency, args.warmup)
            await drive(c, "warm-up", bare, args.concurrency, args.warmup)
            sf_total: Phase | None = None
            bare_total: Phase | None = None
            for _ in range(2):
                sf = await drive(c, "storefront", storefront, args.concurrency, args.seconds / 2)
                br = await drive(c, "bare", bare, args.concurrency, args.seconds / 2)
                sf_total = sf if sf_total is None else sf_total.merge(sf)
                bare_total = br if bare_total is None else bare_total.merge(br)
        assert sf_total is not None and bare_total is not None
        print(
            f"catalog {len(products)} products, {len(inputs)} shoppers, "
            f"{args.concurrency} connections, {args.seconds:g}s per query kind"
        )
        print(
            f"storefront answer: {len(answer['slots'])} slots, {n} items "
            f"({len(set(shown))} distinct products), coupons, cart priced"
        )
        for phase, label in ((sf_total, "storefront"), (bare_total, f"products(ids, first: {n})")):
            print(
                f"{label:<22} {phase.qps:8.1f} q/s   p50 {phase.pct(0.50):7.1f} ms   "
                f"p99 {phase.pct(0.99):7.1f} ms   errors {phase.errors}"
            )
        print(
            f"ratio storefront/bare: throughput {sf_total.qps / bare_total.qps:.2f}x, "
            f"p50 {sf_total.pct(0.5) / bare_total.pct(0.5):.2f}x, "
            f"p99 {sf_total.pct(0.99) / bare_total.pct(0.99):.2f}x"
        )
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        await store.drop_database()
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--shoppers", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="per query kind")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--serve", nargs=3, metavar=("URI", "DATABASE", "PORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        uri, database, port = args.serve
        serve(uri, database, int(port))
        return
    uri = os.environ.get("SHOPFRONT_MONGODB_URI", "")
    if uri:
        asyncio.run(run(args, uri))
        return
    with EmbeddedMongo(":memory:") as server:
        asyncio.run(run(args, server.uri))


if __name__ == "__main__":
    main()
