"""Ingestion benchmark: sustained events per second through GraphQL `trackEvents`, next to raw
`insert_many` of the same documents into the same database, in the same run.

    python -m bench.ingest [--seconds 20] [--batch 500] [--concurrency 4] [--users 500]

Uses the MongoDB at SHOPFRONT_MONGODB_URI, or starts the embedded server. Serves the real app
with uvicorn in this process and posts over HTTP, so the figure includes HTTP, GraphQL parsing,
validation, deduplication, profile updates and anonymous counts. The baseline inserts the very
documents that were stored, with the same indexes, batch size and concurrency: the ratio is
what Shopfront's ingestion costs on top of only storing the events. Absolute figures depend on
the machine and the server (the embedded server is much slower than mongod); compare ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

import httpx
import uvicorn
from shopfront.app import create_app
from shopfront.catalog.products import upsert_products
from shopfront.platform.config import Settings
from shopfront.platform.embedded import EmbeddedMongo, free_port
from shopfront.platform.keys import Role, create_key
from shopfront.platform.store import INDEXES, open_store
from shopfront.shoppers.events import validate_event

TRACK = """
mutation($events: [EventInput!]!) {
  trackEvents(input: {events: $events}) { accepted duplicates rejected }
}
"""
MIX = [
    ("VIEW", 50),
    ("CLICK", 12),
    ("IMPRESSION", 12),
    ("ADD_TO_CART", 8),
    ("REMOVE_FROM_CART", 3),
    ("PURCHASE", 5),
    ("SEARCH", 6),
    ("RATING", 2),
    ("NOT_INTERESTED", 2),
]


@dataclass
class Tally:
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    batches: int = 0


def event_stream(products: int, users: int, seed: int) -> Iterator[dict[str, Any]]:
    """Valid, unique events in GraphQL form: a realistic mix over many shoppers."""
    rng = random.Random(seed)
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    run = uuid.uuid4().hex[:8]
    n = 0
    while True:
        n += 1
        kind = rng.choices(kinds, weights)[0]
        user = rng.randrange(users)
        e: dict[str, Any] = {
            "eventId": f"{run}-{n}",
            "type": kind,
            "userId": f"shopper-{user}",
            "sessionId": f"shopper-{user}-s{rng.randrange(4)}",
            "timestamp": (
                datetime.now(UTC) - timedelta(seconds=rng.randrange(3 * 86_400))
            ).isoformat(),
            "pageType": rng.choice(["HOME", "PRODUCT", "CATEGORY", "SEARCH"]),
        }
        if kind == "SEARCH":
            e["query"] = rng.choice(["running shoes", "wool socks", "rain jacket", "gift"])
        else:
            e["productId"] = f"b{rng.randrange(products):04d}"
        if kind in ("ADD_TO_CART", "REMOVE_FROM_CART", "PURCHASE"):
            e["quantity"] = rng.randint(1, 3)
        if kind == "PURCHASE":
            e["price"] = {"amount": rng.randrange(500, 20_000), "currency": "EUR"}
            e["orderId"] = f"shopper-{user}-o{rng.randrange(50)}"
        if kind == "RATING":
            e["rating"] = rng.randint(1, 5)
        yield e


def as_raw(e: dict[str, Any]) -> dict[str, Any]:
    """The GraphQL event as `ingest_events` takes it (what the resolver hands over)."""
    names = {
        "eventId": "event_id",
        "userId": "user_id",
        "sessionId": "session_id",
        "productId": "product_id",
        "orderId": "order_id",
        "pageType": "page_type",
    }
    raw = {names.get(k, k): v for k, v in e.items()}
    raw["type"] = raw["type"].lower()
    raw["page_type"] = raw["page_type"].lower()
    raw["timestamp"] = datetime.fromisoformat(raw["timestamp"])
    return raw


async def through_graphql(
    url: str, key: str, args: argparse.Namespace, sent_log: list[dict[str, Any]]
) -> tuple[Tally, float]:
    stream = event_stream(args.products, args.users, seed=1)
    tally = Tally()
    deadline = time.perf_counter() + args.seconds
    headers = {"authorization": f"Bearer {key}"}

    async def worker(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            batch = [next(stream) for _ in range(args.batch)]
            resp = await client.post(
                url, json={"query": TRACK, "variables": {"events": batch}}, headers=headers
            )
            body = resp.json()
            if body.get("errors"):
                raise RuntimeError(f"trackEvents failed: {body['errors'][0]['message']}")
            result = body["data"]["trackEvents"]
            tally.sent += len(batch)
            tally.accepted += result["accepted"]
            tally.rejected += result["rejected"]
            tally.batches += 1
            sent_log.extend(batch)

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(args.concurrency)))
    return tally, time.perf_counter() - started


async def raw_inserts(store: Any, docs: list[dict[str, Any]], args: argparse.Namespace) -> float:
    """insert_many of ``docs`` into a fresh collection with the events' indexes."""
    coll = store.collection("bench_raw_events")
    await coll.create_indexes(INDEXES["events"])
    batches = [docs[i : i + args.batch] for i in range(0, len(docs), args.batch)]
    queue = iter(batches)

    async def worker() -> None:
        for batch in queue:
            await coll.insert_many(batch, ordered=False)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return time.perf_counter() - started


async def run(settings: Settings, args: argparse.Namespace) -> None:
    store = await open_store(settings, settings.mongodb_uri)
    server: uvicorn.Server | None = None
    serving: asyncio.Task[None] | None = None
    try:
        products = [
            {
                "id": f"b{i:04d}",
                "title": f"Bench product {i}",
                "price": {"amount": 500 + 37 * i, "currency": "EUR"},
                "category_path": [f"Dept{i % 6}", f"Cat{i % 24}", f"Sub{i % 60}"],
                "brand": f"Brand{i % 30}",
                "tags": [f"tag{i % 40}", f"tag{(i * 7) % 40}"],
                "stock": 10,
            }
            for i in range(args.products)
        ]
        await upsert_products(store, products)
        # Batches mix many shoppers: the merchant's backend forwarding events server-side.
        _, key = await create_key(store, Role.MERCHANT, "bench-ingest")

        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.05)

        sent: list[dict[str, Any]] = []
        tally, gql_seconds = await through_graphql(
            f"http://127.0.0.1:{port}/graphql", key, args, sent
        )
        # The same documents, as they were stored (validated, normalised), new ids.
        now = datetime.now(UTC)
        docs = []
        for e in sent:
            doc = validate_event(as_raw(e), settings, now)
            doc["event_id"] = "raw-" + doc["event_id"]
            doc["batch"] = "raw"
            docs.append(doc)
        raw_seconds = await raw_inserts(store, docs, args)

        gql_rate = tally.accepted / gql_seconds
        raw_rate = len(docs) / raw_seconds
        print(f"database: {'embedded SecantusDB' if args.embedded else 'SHOPFRONT_MONGODB_URI'}")
        print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        print(
            f"batches of {args.batch}, concurrency {args.concurrency}, {args.users} shoppers, "
            f"{args.products} products"
        )
        print(
            f"GraphQL trackEvents : {gql_rate:9.1f} events/s  "
            f"({tally.accepted} accepted of {tally.sent} in {tally.batches} calls, "
            f"{gql_seconds:.1f}s; {tally.rejected} rejected)"
        )
        print(
            f"raw insert_many     : {raw_rate:9.1f} events/s  "
            f"({len(docs)} documents, {raw_seconds:.1f}s)"
        )
        print(f"ratio raw / GraphQL : {raw_rate / gql_rate:9.2f}x")
    finally:
        if server is not None and serving is not None:
            server.should_exit = True
            await serving
        if not args.keep:
            await store.drop_database()
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to send events")
    parser.add_argument("--batch", type=int, default=500, help="events per trackEvents call")
    parser.add_argument("--concurrency", type=int, default=4, help="calls in flight")
    parser.add_argument("--users", type=int, default=500, help="distinct shoppers")
    parser.add_argument("--products", type=int, default=300, help="catalog size")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    uri = os.environ.get("SHOPFRONT_MONGODB_URI", "")
    args.embedded = not uri
    embedded = EmbeddedMongo(":memory:") if args.embedded else None
    if embedded is not None:
        embedded.start()
        uri = embedded.uri
    try:
        settings = Settings.from_env(
            mongodb_uri=uri,
            mongodb_database=f"bench_ingest_{uuid.uuid4().hex[:8]}",
            # Batches queue on a slow server; the benchmark measures throughput, not latency.
            mongo_operation_timeout_ms=120_000,
            max_events_per_call=max(args.batch, 1),
        )
        asyncio.run(run(settings, args))
    finally:
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
