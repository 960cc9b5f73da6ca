"""Tests that can fail: no assert on a freshly built object (always true), no assertion on
wall-clock time (timings belong to bench/; tests wait with tests/waiting.py)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLOCKS = {"monotonic", "perf_counter", "time", "process_time"}


def sources() -> list[Path]:
    folders = [ROOT / "tests", *(ROOT / "examples").glob("*/tests")]
    return [p for f in folders for p in f.rglob("*.py")]


def _constructor(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    return name[:1].isupper()


def _reads_clock(node: ast.expr) -> bool:
    return any(
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr in CLOCKS
        and isinstance(n.func.value, ast.Name)
        and n.func.value.id == "time"
        for n in ast.walk(node)
    )


def problems(source: str, where: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Assert):
            continue
        parts = node.test.values if isinstance(node.test, ast.BoolOp) else [node.test]
        if any(_constructor(p) for p in parts):
            found.append(f"{where}:{node.lineno}: asserts a new object (always true)")
        if _reads_clock(node.test):
            found.append(f"{where}:{node.lineno}: asserts on the clock")
    return found


def test_no_always_true_or_wall_clock_asserts() -> None:
    this = Path(__file__).resolve()
    found = [
        problem
        for path in sources()
        if path.resolve() != this
        for problem in problems(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert not found, "\n".join(found)


def test_the_check_sees_both() -> None:
    source = """
assert Settings(x=1)
assert ok and Plan(steps=())
assert Money(1, "EUR") == total
assert time.monotonic() - started < 5
assert elapsed < 5
"""
    assert [p.split(": ", 1)[1] for p in problems(source, "x.py")] == [
        "asserts a new object (always true)",
        "asserts a new object (always true)",
        "asserts on the clock",
    ]
