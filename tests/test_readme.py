"""The README's settings table lists every setting with its current default and description."""

from __future__ import annotations

import re
from pathlib import Path

from shopfront.platform.config import describe

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
