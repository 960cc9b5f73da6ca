"""Storefront benchmark, in one run: Shopfront's `storefront` query; the same query's captured
answer served from memory by a minimal strawberry app with the same types (`bench.floor`: the
GraphQL floor); and `products(first: 36)` against both. Requests/s at 16 connections, p50/p99,
the ratios, database operations per request (the service's driver command monitoring, from
/metrics), a single request's p50 and the service's RSS. The figures that matter are the ratios.

    python -m bench.storefront [--products 1000] [--concurrency 16] [--seconds 10]
    python -m bench.storefront --products 100000
    python -m bench.storefront --soak 60      # non-200s, strategy timeouts, breaker openings

It starts the embedded MongoDB (or uses SHOPFRONT_MONGODB_URI), seeds a generated catalog and
a few shoppers' histories (then trains once), serves the app and the floor under uvicorn in
child processes, and drives both with httpx from this one. Phases alternate so drift on a
shared machine hits all alike. When the built-in recommenders are not installed, the HOME slots
are served by the small strategies in `bench.storefront_plugin`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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
    from shopfront.recommend.fitting import builtin_recommenders
    from shopfront.recommend.training import train
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
        rate_limit_enabled=False,  # one key drives all the load: the limiter would answer 429
    )
    builtin_home = "shopfront.plugins.recommenders" in BUILTIN_PLUGINS
    config = config_from_mapping({} if builtin_home else {"slots": BENCH_SLOTS})
    plugins = [] if builtin_home else [("bench", storefront_plugin)]
    app = create_app(settings, plugins=plugins, plugin_config=config)
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
    count: int | None = None,
) -> Phase:
    """``concurrency`` connections for ``seconds`` (or, with ``count``, that many requests)."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    def more(i: int) -> bool:
        return i < count if count is not None else time.perf_counter() < stop

    async def worker(w: int) -> None:
        nonlocal errors
        i = w
        while more(i):
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


def start_floor(port: int, captured: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.floor", str(port), str(captured)],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


async def wait_ready(
    base: str, proc: subprocess.Popen[bytes], path: str = "/readyz", timeout_s: float = 600
) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=base) as c:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"a server exited during start-up (code {proc.returncode})")
            try:
                if path == "/readyz":
                    ok = (await c.get(path)).status_code == 200
                else:  # the floor: any GraphQL answer
                    ok = (await c.post(path, json={"query": "{ __typename }"})).status_code == 200
                if ok:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("a server did not become ready")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


# -- what the service says about itself (/metrics) -----------------------------------------

# Not the request path: health pings, and the idle change streams' getMores (a few per second
# per watched collection, whatever the load).
BACKGROUND_COMMANDS = {"ping", "getMore", "hello", "isMaster", "endSessions", "killCursors"}


async def metric_sums(c: httpx.AsyncClient, name: str, by: str | None = None) -> dict[str, float]:
    text = (await c.get("/metrics")).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        labels, _, value = line.rpartition(" ")
        key = ""
        if by is not None and f'{by}="' in labels:
            key = labels.split(f'{by}="', 1)[1].split('"', 1)[0]
        out[key] = out.get(key, 0.0) + float(value)
    return out


async def db_commands(c: httpx.AsyncClient) -> dict[str, float]:
    return await metric_sums(c, "shopfront_db_command_duration_seconds_count", by="command")


def db_ops_per_request(
    before: dict[str, float], after: dict[str, float], requests: int
) -> tuple[float, float]:
    """(request-path operations, all operations) per request."""
    spent = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    path = sum(v for k, v in spent.items() if k not in BACKGROUND_COMMANDS)
    return path / max(requests, 1), sum(spent.values()) / max(requests, 1)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the run -------------------------------------------------------------------------------

PRODUCTS_N = 36
PRODUCTS = f"{{ products(first: {PRODUCTS_N}) {{ nodes {{ {PRODUCT_FIELDS} }} }} }}"


async def seed(args: argparse.Namespace, uri: str, database: str) -> tuple[Any, str, list[Any]]:
    # seeding is bulk work: give it a longer per-operation deadline than serving gets
    settings = Settings.from_env(
        {}, mongodb_uri=uri, mongodb_database=database, mongo_operation_timeout_ms=600_000
    )
    store = await open_store(settings, uri)
    started = time.perf_counter()
    products = generate_products(args.products)
    for start in range(0, len(products), 1000):
        await upsert_products(store, products[start : start + 1000])
    await seed_behaviour(store, settings, products, args.shoppers)
    _, key = await create_key(store, Role.MERCHANT, "bench")
    print(f"seeded {len(products)} products in {time.perf_counter() - started:.0f}s", flush=True)
    return store, key, products


async def run(args: argparse.Namespace, uri: str) -> None:
    database = f"bench_{uuid.uuid4().hex[:8]}"
    store, key, products = await seed(args, uri, database)
    inputs = shopper_inputs(products, args.shoppers)
    port, floor_port = free_port(), free_port()
    proc = start_server(uri, database, port)
    floor: subprocess.Popen[bytes] | None = None
    base = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    headers = {"authorization": f"Bearer {key}"}
    try:
        started = time.perf_counter()
        await wait_ready(base, proc)
        print(f"service ready in {time.perf_counter() - started:.1f}s", flush=True)
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
            listed = (await c.post("/graphql", json={"query": PRODUCTS})).json()
            if answer["degraded"]:
                print(f"warning: degraded: {answer['degraded']}", file=sys.stderr)

            def storefront(i: int) -> tuple[dict[str, Any], dict[str, str]]:
                k = i % len(inputs)
                return {"query": STOREFRONT, "variables": {"input": inputs[k]}}, tokens[k]

            def products36(i: int) -> tuple[dict[str, Any], dict[str, str]]:
                return {"query": PRODUCTS}, {}

            if args.soak:
                await soak(c, storefront, args)
                return

            # single requests, no load: p50 of 50 in a row
            single = await drive(c, "single", storefront, 1, 0.0, count=50)

            with tempfile.TemporaryDirectory() as tmp:
                captured = Path(tmp) / "captured.json"
                captured.write_text(
                    json.dumps(
                        {"storefront": answer, "products": listed["data"]["products"]["nodes"]}
                    )
                )
                floor = start_floor(floor_port, captured)
                await wait_ready(f"http://127.0.0.1:{floor_port}", floor, "/")
            fbase = f"http://127.0.0.1:{floor_port}"
            async with httpx.AsyncClient(base_url=fbase, limits=limits, timeout=30) as f:
                phases: dict[str, Phase] = {}
                ops: dict[str, tuple[float, float]] = {}
                for client, payload in ((c, storefront), (f, storefront), (c, products36)):
                    await drive(client, "warm-up", payload, args.concurrency, args.warmup)
                await drive(f, "warm-up", products36, args.concurrency, args.warmup)
                for _ in range(2):  # alternate, so drift on a shared machine hits all alike
                    for client, name, payload in (
                        (c, "storefront", storefront),
                        (f, "storefront floor", storefront),
                        (c, f"products(first: {PRODUCTS_N})", products36),
                        (f, f"products(first: {PRODUCTS_N}) floor", products36),
                    ):
                        before = await db_commands(c) if client is c else {}
                        phase = await drive(
                            client, name, payload, args.concurrency, args.seconds / 2
                        )
                        if client is c:
                            await asyncio.sleep(0.3)  # let the background writer's batch land
                            n_path, n_all = db_ops_per_request(
                                before, await db_commands(c), len(phase.latencies)
                            )
                            prev = ops.get(name, (0.0, 0.0))
                            ops[name] = (prev[0] + n_path / 2, prev[1] + n_all / 2)
                        phases[name] = phases[name].merge(phase) if name in phases else phase
        rss = rss_mb(proc.pid)
        print(
            f"\ncatalog {len(products)} products, {len(inputs)} shoppers, {args.concurrency} "
            f"connections, {args.seconds:g}s per query kind; storefront answer: "
            f"{len(answer['slots'])} slots, {sum(len(s['items']) for s in answer['slots'])} items"
        )
        print(f"single storefront request, no load: p50 {single.pct(0.5):.1f} ms")
        print("| query | requests/s | p50 ms | p99 ms | errors | DB ops/request |")
        print("|---|---|---|---|---|---|")
        for name, phase in phases.items():
            o = ops.get(name)
            db = f"{o[0]:.2f} ({o[1]:.2f} with background)" if o else "-"
            print(
                f"| {name} | {phase.qps:.0f} | {phase.pct(0.5):.1f} | {phase.pct(0.99):.1f} | "
                f"{phase.errors} | {db} |"
            )
        sf, sff = phases["storefront"], phases["storefront floor"]
        pr, prf = (
            phases[f"products(first: {PRODUCTS_N})"],
            phases[f"products(first: {PRODUCTS_N}) floor"],
        )
        print(
            f"ratios: storefront/floor {sf.qps / sff.qps:.2f}, "
            f"products/floor {pr.qps / prf.qps:.2f}; service RSS {rss:.0f} MB"
        )
    finally:
        stop(proc)
        if floor is not None:
            stop(floor)
        await store.drop_database()
        await store.close()


async def soak(
    c: httpx.AsyncClient,
    payload: Callable[[int], tuple[dict[str, Any], dict[str, str]]],
    args: argparse.Namespace,
) -> None:
    """Storefront requests at ``args.concurrency`` connections for ``args.soak`` seconds:
    non-200 answers, answers with errors, degraded answers, strategy timeouts and breaker
    short-circuits (calls refused by an open breaker) must all be 0 under ordinary load."""
    timeouts0 = sum((await metric_sums(c, "shopfront_strategy_timeouts_total")).values())
    skipped0 = sum((await metric_sums(c, "shopfront_strategy_skipped_total")).values())
    statuses: dict[int, int] = {}
    degraded = errors = 0
    stop_at = time.perf_counter() + args.soak
    latencies: list[float] = []

    async def worker(w: int) -> None:
        nonlocal degraded, errors
        i = w
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            body_sent, headers = payload(i)
            resp = await c.post("/graphql", json=body_sent, headers=headers)
            latencies.append(time.perf_counter() - t0)
            statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
            if resp.status_code == 200:
                body = resp.json()
                errors += bool(body.get("errors"))
                degraded += bool(((body.get("data") or {}).get("storefront") or {}).get("degraded"))
            i += args.concurrency

    await asyncio.gather(*(worker(w) for w in range(args.concurrency)))
    timeouts = sum((await metric_sums(c, "shopfront_strategy_timeouts_total")).values()) - timeouts0
    skipped = sum((await metric_sums(c, "shopfront_strategy_skipped_total")).values()) - skipped0
    ordered = sorted(latencies)
    total = sum(statuses.values())
    print(
        f"soak {args.soak:g}s at {args.concurrency} connections: {total} requests "
        f"({total / args.soak:.0f}/s), p50 {ordered[len(ordered) // 2] * 1000:.1f} ms, "
        f"p99 {ordered[int(len(ordered) * 0.99)] * 1000:.1f} ms"
    )
    print(
        f"non-200: {total - statuses.get(200, 0)} {dict(sorted(statuses.items()))}; "
        f"answers with errors: {errors}; degraded answers: {degraded}; "
        f"strategy timeouts: {timeouts:.0f}; breaker short-circuits: {skipped:.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--shoppers", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="per query kind")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--soak",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="instead of the comparison: storefront load for this long, counting non-200s, "
        "strategy timeouts and breaker short-circuits",
    )
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
