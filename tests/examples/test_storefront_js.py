"""examples/storefront-js: its Node tests (plain fetch and Apollo Client) pass against the
session's demo service, with no warnings."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.demo_service import DemoService
from tests.node import npm_ci, require_node

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "storefront-js"

pytestmark = pytest.mark.slow


def test_storefront_js_clients_against_the_demo(demo_service: DemoService) -> None:
    node, _ = require_node()
    npm_ci(EXAMPLE)
    env = {
        **os.environ,
        "SHOPFRONT_GRAPHQL_URL": demo_service.graphql_url,
        "SHOPFRONT_STOREFRONT_KEY": demo_service.storefront_key,
    }
    done = subprocess.run(
        [node, "--test", "test/"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "# fail 0" in done.stdout and "# pass 7" in done.stdout, done.stdout[-3000:]
    assert "warning" not in done.stderr.lower(), done.stderr
