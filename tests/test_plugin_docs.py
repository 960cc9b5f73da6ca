"""Every hook specification is documented in docs/plugins.md and exercised by a test, and the
README points plugin authors at it."""

from __future__ import annotations

import ast
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


def exercised_hooks(source: str) -> set[str]:
    """Hooks a test module exercises: those it implements with a ``@hookimpl`` function
    (named after the hook, or with ``specname=``), and those it calls through a plugin
    manager's relay (``....hook.<name>(...)``). A name in a string or a comment is not one."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for deco in node.decorator_list:
                target = deco.func if isinstance(deco, ast.Call) else deco
                name = (
                    target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                )
                if name != "hookimpl":
                    continue
                spec = node.name
                if isinstance(deco, ast.Call):
                    for kw in deco.keywords:
                        if kw.arg == "specname" and isinstance(kw.value, ast.Constant):
                            spec = str(kw.value.value)
                found.add(spec)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "hook"
        ):
            found.add(node.func.attr)
    return found


def modules_with_tests() -> list[Path]:
    this = Path(__file__).resolve()
    folders = [ROOT / "tests", *(ROOT / "examples").glob("*/tests")]
    return [p for f in folders for p in f.rglob("test_*.py") if p.resolve() != this]


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_hook_is_tested(hook: str) -> None:
    using = [
        p for p in modules_with_tests() if hook in exercised_hooks(p.read_text(encoding="utf-8"))
    ]
    assert using, f"no test module implements the hook {hook!r} with @hookimpl or calls it"


def test_a_mention_is_not_a_test() -> None:
    source = """
# on_event is great
NAME = "on_user_erased"
def on_event(ctx): ...
class Shop:
    @hookimpl
    def startup(self, host): ...
    @hookimpl(trylast=True, specname="blend_candidates")
    def blend(self, ctx): ...
def test_it(pm):
    pm.hook.register_promotions(settings=None)
    hook_names.promotion_stacking()
"""
    assert exercised_hooks(source) == {"startup", "blend_candidates", "register_promotions"}


def test_readme_has_a_writing_a_plugin_section() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "\n## Writing a plugin\n" in readme
    assert "docs/plugins.md" in readme
