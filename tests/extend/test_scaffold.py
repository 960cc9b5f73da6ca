"""`shopfront plugin new NAME` scaffolds a package whose own tests pass as generated: here it
is generated into a temporary folder and its tests run in a fresh pytest process, with the
plugin importable from its ``src`` folder and registered through the kit (no pip install)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tomllib
from importlib.metadata import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner
from shopfront.cli import main
from shopfront.extend.scaffold import ScaffoldError, scaffold


async def test_the_scaffolded_package_passes_its_own_tests(tmp_path: Path, mongo_uri: str) -> None:
    made = scaffold("staff-picks", tmp_path)
    assert made.root == tmp_path / "shopfront-staff-picks"
    assert (made.plugin, made.package) == ("staff_picks", "shopfront_staff_picks")

    project = tomllib.loads((made.root / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["shopfront"] == {
        "staff_picks": "shopfront_staff_picks"
    }
    assert project["project"]["optional-dependencies"]["test"] == ["shopfront[plugin-dev]"]
    assert project["tool"]["pytest"]["ini_options"]["asyncio_mode"] == "auto"

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
        "PYTHONPATH": str(made.root / "src"),
        "SHOPFRONT_MONGODB_URI": mongo_uri,  # the kit reuses this run's database server
    }
    run = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=made.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout

    lint = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=made.root,
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_names_are_checked_and_nothing_is_overwritten(tmp_path: Path) -> None:
    for bad in ("Staff", "9lives", "staff__picks", "staff picks", "x" * 41):
        with pytest.raises(ScaffoldError, match="plugin name"):
            scaffold(bad, tmp_path)
    scaffold("picks", tmp_path)
    with pytest.raises(ScaffoldError, match="already exists"):
        scaffold("picks", tmp_path)


def test_the_cli_scaffolds_into_a_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["plugin", "new", "gift_ideas", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    root = tmp_path / "shopfront-gift-ideas"
    assert f"created {root}" in result.output
    assert (root / "src" / "shopfront_gift_ideas" / "recommender.py").is_file()
    assert (root / "tests" / "test_gift_ideas.py").is_file()
    again = CliRunner().invoke(main, ["plugin", "new", "gift_ideas", "--dir", str(tmp_path)])
    assert again.exit_code == 1 and "already exists" in again.output


def test_the_plugin_dev_extra_brings_what_the_kit_imports() -> None:
    requires = metadata("shopfront").get_all("Requires-Dist") or []
    extra = {
        r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
        for r in requires
        if 'extra == "plugin-dev"' in r
    }
    assert extra == {"secantusdb", "pytest", "pytest-asyncio", "httpx", "asgi-lifespan"}
