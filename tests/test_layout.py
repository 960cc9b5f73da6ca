"""The package layout is what the docs say: one `shopfront` import package, domain packages,
built-in plugins and examples on the public API only."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import shopfront
from shopfront.extend import api

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"service": "shopfront", "plugins": "shopfront.plugins", "schema": "shopfront.schema"}
OLD_TOP_LEVEL = {"service", "plugins", "schema"}


def python_files(*folders: str) -> list[Path]:
    return [p for f in folders for p in (ROOT / f).rglob("*.py") if "node_modules" not in p.parts]


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = set()
    for folder, package in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *rel)))
    assert found == listed, "pyproject's [tool.setuptools] packages must list every package"


def test_nothing_imports_the_old_top_level_names() -> None:
    offenders = [
        f"{p.relative_to(ROOT)}:{line} imports {mod}"
        for p in python_files("service", "plugins", "schema", "tests", "bench", "examples")
        for line, mod in imported_modules(p)
        if mod.split(".")[0] in OLD_TOP_LEVEL
    ]
    assert offenders == []


@pytest.mark.parametrize("folder", ["plugins", "examples"])
def test_plugins_and_examples_use_only_the_public_api(folder: str) -> None:
    """Merchant-facing code imports `shopfront` (and the pytest kit in tests), nothing inside."""
    allowed = {"shopfront", "shopfront.testing"}
    offenders = []
    for p in python_files(folder):
        for line, mod in imported_modules(p):
            if not mod.startswith("shopfront") or mod in allowed:
                continue
            if folder == "plugins" and mod.startswith("shopfront.plugins."):
                continue  # built-ins share their own helpers
            if mod.startswith("shopfront_"):
                continue  # the example's own package
            offenders.append(f"{p.relative_to(ROOT)}:{line} imports {mod}")
    assert offenders == []


def test_the_public_api_is_importable_from_the_top() -> None:
    for name in api.__all__:
        assert getattr(shopfront, name) is getattr(api, name)
    assert set(shopfront.__all__) == set(api.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = shopfront.nope  # type: ignore[attr-defined]


def test_service_top_level_stays_small() -> None:
    modules = [p.name for p in (ROOT / "service").glob("*.py")]
    assert len(modules) <= 8, modules
    long = {
        str(p.relative_to(ROOT)): n
        for p in python_files("service", "plugins", "schema")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 850
    }
    assert long == {}, "split modules over ~800 lines by concern"


@pytest.mark.slow
def test_the_wheel_installs_only_shopfront(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), "."],
        cwd=ROOT,
        check=True,
    )
    (wheel,) = tmp_path.glob("shopfront-*.whl")
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"shopfront"}
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "shopfront/py.typed" in names
    assert "shopfront/schema/schema.graphql" in names
    assert "shopfront/plugins/recommenders/__init__.py" in names
