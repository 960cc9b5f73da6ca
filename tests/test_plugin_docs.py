"""Every hook specification is documented in docs/plugins.md and exercised by a test, and the
README points plugin authors at it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from shopfront.extend.hookspecs import HOOK_NAMES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "plugins.md"


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_hook_is_documented(hook: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert re.search(rf"^#+ `{hook}`$", text, re.MULTILINE), (
        f"hook {hook!r} has no `#### `{hook}`` section in docs/plugins.md"
    )


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_hook_is_tested(hook: str) -> None:
    this = Path(__file__).resolve()
    tests = [p for p in (ROOT / "tests").rglob("test_*.py") if p.resolve() != this]
    using = [p for p in tests if re.search(rf"\b{hook}\b", p.read_text(encoding="utf-8"))]
    assert using, f"no test under tests/ exercises the hook {hook!r}"


def test_readme_has_a_writing_a_plugin_section() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "\n## Writing a plugin\n" in readme
    assert "docs/plugins.md" in readme
