"""Where CLI commands find their data: one folder, named on the first line, never a new
empty database by accident, and the running service's embedded database shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from shopfront.cli import RUNNING_FILE, database, main
from shopfront.platform.config import Settings

CSV = "id,title,price_amount,currency\np1,Shoe,1999,EUR\n"


@pytest.fixture
def cli() -> CliRunner:
    # No SHOPFRONT_MONGODB_URI: these commands use the embedded database of a data folder.
    env = {k: None for k in os.environ if k.startswith("SHOPFRONT_")}
    return CliRunner(env=env)


def run(cli: CliRunner, *args: str, env: dict[str, str] | None = None) -> Result:
    return cli.invoke(main, list(args), env=env, catch_exceptions=False)


def test_a_read_command_never_creates_a_database(cli: CliRunner, tmp_path: Path) -> None:
    data = tmp_path / "elsewhere"
    listed = run(cli, "keys", "list", "--data-dir", str(data))
    assert listed.exit_code == 1
    assert f"no Shopfront database in {data}" in listed.stderr and "--create" in listed.stderr
    products = tmp_path / "products.csv"
    products.write_text(CSV)
    imported = run(cli, "import", str(products), env={"SHOPFRONT_DATA_DIR": str(data)})
    assert imported.exit_code == 1 and "--create" in imported.stderr
    assert not data.exists()


def test_one_data_folder_from_any_command(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    products = tmp_path / "products.csv"
    products.write_text(CSV)
    created = run(cli, "--data-dir", str(data), "import", "--create", str(products))
    assert created.exit_code == 0, created.output
    assert created.stderr.splitlines()[0] == (
        f"database: embedded, {data / 'db'} (started for this command)"
    )
    assert "products.csv: 1 created" in created.stdout
    assert not (data / RUNNING_FILE).exists()

    # From another folder, through the environment: the same database, no --create needed.
    monkeypatch.chdir(tmp_path)
    env = {"SHOPFRONT_DATA_DIR": str(data)}
    again = run(cli, "import", str(products), env=env)
    assert again.exit_code == 0, again.output
    assert "products.csv: 0 created, 1 updated" in again.stdout

    # While a process serves the folder, commands connect to its server instead of
    # starting a second one on the same files.
    with database(Settings.from_env({}, data_dir=data)) as live:
        shared = run(cli, "keys", "list", "--json", env=env)
        assert shared.exit_code == 0, shared.output
        first = shared.stderr.splitlines()[0]
        assert first.startswith(f"database: embedded, {data / 'db'} (already running, started by")
        assert f"pid {os.getpid()}" in first
        assert shared.stdout.strip() == "[]"
        assert live.mongodb_uri in (data / RUNNING_FILE).read_text()
