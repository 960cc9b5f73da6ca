"""docs/privacy.md covers every collection of the personal-data registry with its setting."""

from __future__ import annotations

from pathlib import Path

from shopfront.platform.personal_data import NOT_PERSONAL, PERSONAL_DATA

DOC = Path(__file__).resolve().parent.parent / "docs" / "privacy.md"


def test_every_personal_collection_is_documented_with_its_retention_setting() -> None:
    text = DOC.read_text(encoding="utf-8")
    for c in PERSONAL_DATA:
        row = next((line for line in text.splitlines() if line.startswith(f"| `{c.name}` |")), "")
        assert row, f"docs/privacy.md has no row for {c.name}"
        assert f"`{c.env_name()}`" in row, f"the {c.name} row does not name {c.env_name()}"
    for name in NOT_PERSONAL:
        assert f"`{name}`" in text, f"docs/privacy.md does not say why {name} is not personal"
