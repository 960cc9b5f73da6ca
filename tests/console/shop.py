"""A running Shopfront for browser tests: the real app under uvicorn on a loopback port, in a
background thread, over a small demo shop seeded through the same paths `serve --demo` uses."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from shopfront.app import create_app
from shopfront.demo.setup import prepare_demo
from shopfront.platform.config import Settings
from shopfront.platform.embedded import free_port
from shopfront.platform.store import open_store
from shopfront.recommend.fitting import builtin_recommenders
from shopfront.recommend.training import train
from shopfront.testing import test_settings

T = TypeVar("T")


@dataclass
class Shop:
    base_url: str
    merchant_key: str
    storefront_key: str
    settings: Settings

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """A merchant GraphQL call, to compare what the console shows with what the API says."""
        response = httpx.post(
            f"{self.base_url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"authorization": f"Bearer {self.merchant_key}"},
            timeout=30,
        )
        body: dict[str, Any] = response.json()
        assert not body.get("errors"), body["errors"]
        data: dict[str, Any] = body["data"]
        return data


async def _seed(settings: Settings) -> tuple[str, str]:
    store = await open_store(settings, settings.mongodb_uri)
    try:
        keys = await prepare_demo(
            store, settings
        )  # catalog, history, promotions, a model, an experiment
        # A second training run, so there is a version to roll back to.
        await train(store, settings, builtin_recommenders(settings, store))
        return keys.merchant, keys.storefront
    finally:
        await store.close()


async def _drop(settings: Settings) -> None:
    store = await open_store(settings, settings.mongodb_uri)
    try:
        await store.drop_database()
    finally:
        await store.close()


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a loop of its own thread (Playwright's sync API
    keeps an event loop running on the test thread)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class RunningShop:
    def __init__(self, mongo_uri: str, data_dir: Path) -> None:
        self.settings = test_settings(
            mongo_uri,
            data_dir=data_dir,
            demo_shoppers=40,
            shipping_fee=("EUR=495",),  # as `serve --demo`: the free-shipping promotion has a fee
        )
        self.port = free_port()
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> Shop:
        merchant, storefront = _run(_seed(self.settings))
        app = create_app(self.settings)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="console-shop", daemon=True)
        self.thread.start()
        base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:  # wait until the app answers ready (the lifespan loaded models, experiments)
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the console test service did not become ready")
            time.sleep(0.1)
        return Shop(base, merchant, storefront, self.settings)

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(timeout=30)
        _run(_drop(self.settings))
