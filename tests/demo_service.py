"""One `shopfront serve --demo` for a test session, started as a user starts it.

Shared by the tests that need a real service on a real port (the README's examples, the
GraphQL-over-HTTP audit, the JavaScript clients, GraphiQL in a browser): a demo start takes
seconds, so it happens once. Tests that use it must not change what the others read (add
their own products, keys or shoppers rather than editing the demo's).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from shopfront.demo.setup import MERCHANT_VAR, STOREFRONT_VAR, read_keys_file
from shopfront.platform.embedded import free_port

DEMO_SHOPPERS = 40  # a small history keeps the start quick; demo-0001... all exist


@dataclass
class DemoService:
    url: str  # http://127.0.0.1:PORT
    port: int
    data_dir: Path
    env: dict[str, str]  # the environment it runs with (SHOPFRONT_DATA_DIR set)
    storefront_key: str
    merchant_key: str
    process: subprocess.Popen[bytes]
    log: Path
    accepted_at_banner: bool  # a connection made right after the banner was accepted

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        resp = httpx.post(
            self.graphql_url,
            json={"query": query, "variables": variables or {}},
            headers={"authorization": f"Bearer {self.storefront_key}"},
            timeout=30,
        )
        return resp.json()


def shopfront_command() -> str:
    """The `shopfront` script of the environment running the tests."""
    return str(Path(sys.executable).parent / "shopfront")


def start_demo(folder: Path, timeout_s: float = 120) -> DemoService:
    port = free_port()
    data = folder / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFRONT_")}
    env["SHOPFRONT_DATA_DIR"] = str(data)
    env["SHOPFRONT_DEMO_SHOPPERS"] = str(DEMO_SHOPPERS)
    log = folder / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [shopfront_command(), "serve", "--demo", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    deadline = time.monotonic() + timeout_s
    while "ready in" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the demo did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        accepted = True
    except OSError:
        accepted = False
    keys = read_keys_file(data / "demo-keys.env")
    return DemoService(
        url=f"http://127.0.0.1:{port}",
        port=port,
        data_dir=data,
        env=env,
        storefront_key=keys[STOREFRONT_VAR],
        merchant_key=keys[MERCHANT_VAR],
        process=proc,
        log=log,
        accepted_at_banner=accepted,
    )


def stop_demo(service: DemoService) -> None:
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGINT)
        try:
            service.process.wait(30)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()


@pytest.fixture(scope="session")
def demo_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoService]:
    service = start_demo(tmp_path_factory.mktemp("demo-service"))
    try:
        yield service
    finally:
        stop_demo(service)
