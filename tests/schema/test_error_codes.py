"""Every top-level error code the service can raise is a member of `ErrorCode`, the one
documented list (docs/graphql.md, and the ``ErrorCode`` enum of the SDL).

The check reads the source: wherever an error's extensions are built (an ``extensions=``
argument, an ``extensions = {...}`` assignment, ``extensions.setdefault("code", ...)``), the
code must come from `ErrorCode` — a member by name, or a parameter typed `ErrorCode` — and
never be a string spelled out on the spot. Errors made by `coded_error`/`user_error` take an
`ErrorCode` (mypy enforces that), so the source check covers the rest.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from shopfront.experiments.definitions import ErrorCode as ExperimentErrorCode
from shopfront.schema import sdl
from shopfront.schema.errors import HTTP_STATUS_FOR_CODE, ErrorCode

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_FOLDERS = ("service", "schema", "plugins")
MEMBERS = {c.name for c in ErrorCode}


def _is_member(node: ast.expr) -> bool:
    """``ErrorCode.NAME`` or ``ErrorCode.NAME.value`` with NAME a member."""
    if isinstance(node, ast.Attribute) and node.attr == "value":
        node = node.value
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "ErrorCode"
        and node.attr in MEMBERS
    )


def _typed_parameters(func: ast.FunctionDef | ast.AsyncFunctionDef | None) -> set[str]:
    if func is None:
        return set()
    args = [*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs]
    return {
        a.arg for a in args if a.annotation is not None and ast.unparse(a.annotation) == "ErrorCode"
    }


def _from_enum(node: ast.expr, typed: set[str]) -> bool:
    if _is_member(node):
        return True
    # ``code.value`` where ``code: ErrorCode`` is a parameter of the enclosing function
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "value"
        and isinstance(node.value, ast.Name)
        and node.value.id in typed
    )


def code_violations(source: str, where: str) -> list[str]:
    """Places in ``source`` that give an error a code not taken from `ErrorCode`."""
    tree = ast.parse(source)
    found: list[str] = []

    def visit(node: ast.AST, func: ast.FunctionDef | ast.AsyncFunctionDef | None) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            func = node
        typed = _typed_parameters(func)
        extension_dicts: list[ast.expr] = []
        if isinstance(node, ast.keyword) and node.arg == "extensions":
            extension_dicts.append(node.value)
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is not None and any(
                "extensions" in ast.unparse(t).lower() for t in targets
            ):
                extension_dicts.append(node.value)
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "extensions":
                    extension_dicts.append(value)
        for candidate in extension_dicts:
            if not isinstance(candidate, ast.Dict):
                continue
            for key, value in zip(candidate.keys, candidate.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and key.value == "code"
                    and not _from_enum(value, typed)
                ):
                    found.append(f"{where}:{value.lineno}: code {ast.unparse(value)}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "setdefault"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == "code"
            and "extensions" in ast.unparse(node.func.value)
        ):
            value = node.args[1] if len(node.args) > 1 else node.args[0]
            if not _from_enum(value, typed):
                found.append(f"{where}:{value.lineno}: code {ast.unparse(value)}")
        for child in ast.iter_child_nodes(node):
            visit(child, func)

    visit(tree, None)
    return found


def test_every_code_raised_in_the_package_is_an_error_code() -> None:
    sources = [p for folder in PACKAGE_FOLDERS for p in (ROOT / folder).rglob("*.py")]
    assert len(sources) > 50
    violations = [
        v
        for path in sources
        for v in code_violations(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert not violations, "codes not taken from ErrorCode:\n" + "\n".join(violations)


def test_the_check_catches_a_code_spelled_out() -> None:
    source = """
def refuse(message, code: ErrorCode, other: str):
    ok1 = GraphQLError(message, extensions={"code": ErrorCode.FORBIDDEN.value})
    ok2 = GraphQLError(message, extensions={"code": code.value})
    bad1 = GraphQLError(message, extensions={"code": "NOPE"})
    bad2 = GraphQLError(message, extensions={"code": other})
    bad3 = GraphQLError(message, extensions={"code": ErrorCode.NO_SUCH_MEMBER.value})
    error.extensions = {"code": "ALSO_NOPE", "limit": 3}
    extensions.setdefault("code", "THIRD")
    body = {"errors": [{"message": message, "extensions": {"code": other}}]}
"""
    found = code_violations(source, "x.py")
    assert [f.split(": code ")[1] for f in found] == [
        "'NOPE'",
        "other",
        "ErrorCode.NO_SUCH_MEMBER.value",
        "'ALSO_NOPE'",
        "'THIRD'",
        "other",
    ]


def test_domain_codes_and_http_statuses_map_into_the_enum() -> None:
    # experiments raise their own codes, turned into ErrorCode by value in schema/experiments
    assert {c.value for c in ExperimentErrorCode} <= {c.value for c in ErrorCode}
    assert set(HTTP_STATUS_FOR_CODE) <= {c.value for c in ErrorCode}


def test_the_sdl_publishes_the_enum() -> None:
    text = sdl()
    block = text[text.index("enum ErrorCode {") :]
    block = block[: block.index("}")]
    listed = {line.strip() for line in block.splitlines()[1:] if line.strip().isupper()}
    assert listed == MEMBERS


def test_the_docs_list_every_code() -> None:
    text = (ROOT / "docs" / "graphql.md").read_text()
    rows = set(re.findall(r"^\| `([A-Z_]+)` \|", text, re.M))
    assert rows == MEMBERS
