"""The README is executable: its settings table matches the code, and every shell and GraphQL
example runs against a demo service (a small, documented list of commands is skipped)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from shopfront.platform.config import describe
from shopfront.storefront.slots import DEFAULT_SLOTS

from tests.demo_service import DemoService

README = Path(__file__).resolve().parents[1] / "README.md"


def table_row(name: str, default: str, doc: str) -> str:
    return f"| `{name}` | {default or '—'} | {doc} |"


def test_settings_table_matches_config() -> None:
    lines = README.read_text().splitlines()
    expected = [table_row(*row) for row in describe()]
    missing = [row for row in expected if row not in lines]
    assert not missing, (
        "README.md's settings table is missing or has stale rows; the rows should read:\n"
        + "\n".join(expected)
    )


def test_settings_table_has_no_unknown_settings() -> None:
    known = {name for name, _, _ in describe()}
    listed = set(re.findall(r"^\| `(SHOPFRONT_[A-Z0-9_]+)` \|", README.read_text(), re.M))
    assert listed == known


# -- every shell and GraphQL example runs -------------------------------------------------
#
# The examples run in README order against the session's demo service (tests/demo_service.py,
# the command `make run` starts), from a folder laid out like a checkout: `.venv` is the
# environment running the tests, `.shopfront` the demo's data folder. The port the README
# names (8000) is replaced by the demo's. Each shell block starts by sourcing the demo keys,
# as "In a second terminal: source .shopfront/demo-keys.env" asks once for all of them.
# A ```json block right after "Save this as `FILE`" is written to FILE; one right after a
# shell block is that block's expected answer (compared exactly when it is complete JSON).

SKIPPED = {
    "make run": "starts the long-running demo service; the session's demo service is it",
    "make test": "runs this test suite",
    "make lint": "run by `make test` itself",
    "make typecheck": "run by `make test` itself",
    "make schema": "rewrites schema/schema.graphql; tests/schema checks it is current",
    "docker compose": "needs Docker and builds an image (tests/docker checks the files)",
}
COMMANDS = (".venv/bin/", "make ", "docker ", "curl ", "source ", "python ", "pip ", "shopfront ")
IMPORT_FILES = {
    "products.csv": "id,title,price_amount,currency,category_path\n"
    "readme-1,README mug,1450,EUR,Home > Kitchen\n",
    "products.jsonl": '{"id": "readme-2", "title": "README bowl", '
    '"price": {"amount": 990, "currency": "EUR"}}\n',
    "export.txt": "id,title,price_amount,currency\nreadme-3,README plate,1290,EUR\n",
}


@dataclass
class Example:
    kind: str  # "sh", "json", "toml", "indented", ...
    text: str
    line: int
    before: str  # the prose just before it


def examples(text: str) -> list[Example]:
    found: list[Example] = []
    lines = text.splitlines()
    prose: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            kind, start = line[3:].strip(), i
            i += 1
            body = []
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            found.append(Example(kind, "\n".join(body), start + 1, " ".join(prose)))
            prose = []
        elif line.startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            start, body = i, []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                body.append(lines[i][4:])
                i += 1
            found.append(Example("indented", "\n".join(body).strip(), start + 1, " ".join(prose)))
            prose = []
            continue
        elif line.strip():
            prose.append(line.strip())
        else:
            prose = prose[-3:]  # keep the paragraph just before a block
        i += 1
    return found


def skip_reason(command: str) -> str | None:
    return next((why for prefix, why in SKIPPED.items() if command.startswith(prefix)), None)


def shell_commands(example: Example) -> list[str]:
    if example.kind == "sh":
        return [example.text]
    if example.kind == "indented":
        return [c for c in example.text.splitlines() if c.startswith(COMMANDS)]
    return []


@pytest.fixture
def checkout(tmp_path: Path, demo_service: DemoService) -> Path:
    """A folder laid out like a checkout, for the README's relative paths."""
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    (tmp_path / ".shopfront").symlink_to(demo_service.data_dir)
    for name, content in IMPORT_FILES.items():
        (tmp_path / name).write_text(content)
    return tmp_path


def test_every_readme_example_runs(checkout: Path, demo_service: DemoService) -> None:
    failures: list[str] = []
    ran = 0
    found = examples(README.read_text())
    previous: Example | None = None
    last_output = ""
    for example in found:
        saved = re.search(r"Save this as `([^`]+)`", example.before)
        if example.kind == "json" and saved:
            (checkout / saved.group(1)).write_text(example.text)
        elif example.kind == "json" and previous is not None and previous.kind == "sh":
            problem = compare_answer(last_output, example.text)
            if problem:
                failures.append(f"README line {example.line}: {problem}")
        for command in shell_commands(example):
            if skip_reason(command):
                continue
            ran += 1
            last_output, problem = run_example(command, checkout, demo_service)
            if problem:
                failures.append(f"README line {example.line}: {command!r}: {problem}")
        previous = example
    assert ran >= 10, f"only {ran} README commands ran; is the parser still finding them?"
    assert not failures, "\n".join(failures)


def run_example(command: str, cwd: Path, demo: DemoService) -> tuple[str, str | None]:
    script = "set -euo pipefail\nsource .shopfront/demo-keys.env\n" + command.replace(
        "127.0.0.1:8000", f"127.0.0.1:{demo.port}"
    )
    env = {**demo.env, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        return done.stdout, f"exit {done.returncode}: {done.stderr[-2000:]}"
    out = done.stdout
    if "curl " in command:
        try:
            body = json.loads(out)
        except ValueError:
            return out, f"not a JSON answer: {out[:500]}"
        if body.get("errors"):
            return out, f"GraphQL errors: {body['errors']}"
        storefront = (body.get("data") or {}).get("storefront")
        if storefront is not None:
            # The README's demo shopper is in the demo experiment, and its cart prices.
            if not storefront["experiments"]:
                return out, "the demo shopper is in no experiment"
            if not storefront["slots"] or storefront["cart"]["errors"]:
                return out, f"no slots or a cart line error: {storefront}"
    if "report experiment" in command and "home-recs-v2" not in out:
        return out, f"no experiment report: {out[:500]}"
    return out, None


def compare_answer(output: str, expected_text: str) -> str | None:
    """Why ``output`` does not match the README's expected answer, if it does not."""
    try:
        actual = json.loads(output)
    except ValueError:
        return f"the command's answer is not JSON: {output[:300]}"
    try:
        expected = json.loads(expected_text)
    except ValueError:  # abbreviated with "...": compare the fields it shows
        shown = re.findall(r'"([A-Za-z]+)":', expected_text)
        missing = [k for k in dict.fromkeys(shown) if f'"{k}"' not in output]
        return f"fields the README shows are missing: {missing}" if missing else None
    return None if actual == expected else f"answer {actual} differs from the README's {expected}"


def test_skipped_commands_are_still_in_the_readme() -> None:
    commands = [c for e in examples(README.read_text()) for c in shell_commands(e)]
    for prefix in SKIPPED:
        assert any(c.startswith(prefix) for c in commands), f"{prefix!r} is no longer in README"


def test_config_examples_name_real_slots() -> None:
    slot_names = {slot.name for slots in DEFAULT_SLOTS.values() for slot in slots}
    for example in examples(README.read_text()):
        if example.kind != "toml" or "pins" not in example.text:
            continue
        config = tomllib.loads(example.text.split("\n[strategies")[0])
        for pin in config["plugins"]["recommenders"]["blend"]["pins"]:
            assert pin["slot"] in slot_names, f"README line {example.line}: {pin['slot']!r}"
