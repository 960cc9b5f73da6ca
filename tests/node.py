"""Running Node.js from pytest: find node and npm, install a folder's locked packages.

Without node a test is skipped with the reason shown (`-ra`), except under CI (``CI=true``),
where a missing toolchain must fail rather than pass unnoticed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def require_node() -> tuple[str, str]:
    """Paths of ``node`` and ``npm``; skips (or fails under CI) when either is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return node, npm
    reason = "Node.js (node and npm) is not installed; the JavaScript tests need it"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason + " (CI=true: not skipped)")
    pytest.skip(reason)


def npm_ci(folder: Path) -> None:
    """``npm ci`` in ``folder`` unless its node_modules already match package-lock.json.

    npm keeps a copy of the lock in ``node_modules/.package-lock.json``; when it is newer
    than package-lock.json nothing changed since the last install. ``--prefer-offline`` uses
    npm's cache first, so a warm cache installs without the network.
    """
    _, npm = require_node()
    installed = folder / "node_modules" / ".package-lock.json"
    lock = folder / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    done = subprocess.run(
        [npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"npm ci in {folder} failed:\n{done.stdout}\n{done.stderr}"
