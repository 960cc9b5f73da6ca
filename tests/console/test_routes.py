"""The console's HTTP side, without a browser: one page and its assets, shipped in the package
(nothing from another origin), with headers that keep the key's page to itself."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from shopfront.console.routes import STATIC_DIR
from starlette.applications import Starlette

from tests.console import conftest

ASSETS = sorted(p.relative_to(STATIC_DIR).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file())


async def test_the_console_page_is_served_with_a_strict_policy(client: httpx.AsyncClient) -> None:
    page = await client.get("/console")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert 'src="console/static/js/app.js"' in page.text

    slash = await client.get("/console/", follow_redirects=False)
    assert slash.status_code == 308
    assert slash.headers["location"] == "../console"


async def test_every_asset_is_local_and_served_with_its_type(client: httpx.AsyncClient) -> None:
    assert {"index.html", "console.css", "js/app.js", "js/api.js"} <= set(ASSETS)
    types = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
    for name in ASSETS:
        text = (STATIC_DIR / name).read_text()
        # Works offline: no CDN, no remote font or script, nothing fetched from another origin.
        assert not re.search(r"""(src|href|url|import)\s*[=(]?\s*["']?(https?:)?//""", text), name
        if name == "index.html":
            continue
        response = await client.get(f"/console/static/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"].startswith(types[name[name.rindex(".") :]])
        assert response.headers["x-content-type-options"] == "nosniff"
    missing = await client.get("/console/static/js/nope.js")
    assert missing.status_code == 404


def test_the_key_is_kept_in_session_storage_only() -> None:
    api = (STATIC_DIR / "js" / "api.js").read_text()
    assert "sessionStorage.setItem" in api
    for place in ("localStorage", "document.cookie", "console.log"):
        assert not any(place in (STATIC_DIR / n).read_text() for n in ASSETS), place


def test_the_console_routes_are_mounted_in_the_app(app: Starlette) -> None:
    paths = {getattr(r, "path", None) for r in app.routes}
    assert {"/console", "/console/", "/console/static"} <= paths


def test_a_missing_browser_skips_locally_and_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(conftest, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-chromium is missing"):
        conftest.require_browser()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run under CI"):
        conftest.require_browser()
