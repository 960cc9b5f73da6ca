"""docs/plugins.md is one page that is enough: every public name documented with its fields,
its code written against public names only, and its walk-through plugin working as printed
(copied out of the page into a folder and its own tests run there)."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from shopfront.extend import api
from shopfront.extend.reference import BEGIN, END, render

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "plugins.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)


def page() -> str:
    return DOCS.read_text(encoding="utf-8")


def sections() -> dict[str, str]:
    """``#### `Name``` heading -> its text up to the next heading."""
    parts = re.split(r"^#### `([^`]+)`$", page(), flags=re.M)
    return {
        parts[i]: re.split(r"^#{1,4} ", parts[i + 1], flags=re.M)[0]
        for i in range(1, len(parts), 2)
    }


def test_the_reference_section_matches_the_code() -> None:
    text = page()
    generated = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert generated == render(), "docs/plugins.md is stale: run `make plugin-docs`"


@pytest.mark.parametrize("name", api.__all__)
def test_every_public_name_is_documented_with_its_fields(name: str) -> None:
    found = sections()
    assert name in found, f"{name} has no #### `{name}` entry in docs/plugins.md"
    obj = getattr(api, name)
    if name == "Settings":
        assert "README" in found[name]  # its fields are the README's settings table
    elif isinstance(obj, type) and dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            if not f.name.startswith("_"):
                assert f"| `{f.name}` |" in found[name], f"{name}.{f.name} is not listed"
    elif isinstance(obj, type) and issubclass(obj, enum.Enum):
        for member in obj:
            assert f"| `{member.name}` |" in found[name], f"{name}.{member.name} is not listed"


def test_the_page_imports_only_public_names() -> None:
    for lang, code in BLOCK.findall(page()):
        if lang != "python":
            continue
        for module in re.findall(r"^\s*(?:from|import) (shopfront(?:\.[\w.]+)?)\b", code, re.M):
            assert module in ("shopfront", "shopfront.testing"), f"docs import {module}"


def walkthrough_files() -> dict[str, str]:
    files = {}
    for _, code in BLOCK.findall(page()):
        first = code.partition("\n")[0]
        match = re.match(r"# file: (\S+)$", first)
        if match:
            files[match.group(1)] = code
    return files


async def test_the_walkthrough_plugin_works_as_printed(tmp_path: Path, mongo_uri: str) -> None:
    files = walkthrough_files()
    assert {"pyproject.toml", "src/shopfront_gift_shop/__init__.py", "tests/conftest.py"} <= set(
        files
    )
    for relative, code in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code, encoding="utf-8")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
        "PYTHONPATH": str(tmp_path / "src"),
        "SHOPFRONT_MONGODB_URI": mongo_uri,
    }
    run = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "8 passed" in run.stdout, run.stdout
    for command in (["check"], ["format", "--check"]):
        lint = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "ruff", *command, "--no-cache", "."],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
