"""Browser fixtures: Debian's chromium driven by Playwright (never a downloaded browser).

Without chromium (or Playwright) the console tests skip with the reason; under CI (CI=true)
a missing browser fails the run instead, so CI cannot pass without having run them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.shop import RunningShop, Shop

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "console"


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[test]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


# Module scope, not session: Playwright's sync API keeps an event loop running on the test
# thread while it is open, and the async tests of later modules need that thread's loop.
def require_browser() -> None:
    """Skip without a browser, or fail under CI (CI=true)."""
    reason = _missing_browser()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"console browser tests cannot run under CI: {reason}")
        pytest.skip(f"console browser tests skipped: {reason}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def shop(browser: Any, mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    running = RunningShop(mongo_uri, tmp_path_factory.mktemp("console-shop"))
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture
def page(browser: Any, shop: Shop) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=shop.base_url)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())  # confirmations of stop / roll back
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture
def screenshot(page: Any) -> Any:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
