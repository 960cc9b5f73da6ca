"""The `shopfront` command line against the test database: keys, import, seed.

The CLI runs its own event loop (`asyncio.run`), so async tests call it in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from shopfront.catalog import products as catalog
from shopfront.cli import main
from shopfront.platform.config import Settings
from shopfront.platform.store import Store
from shopfront.testing import graphql_caller

PRODUCTS = "query { products(first: 5) { nodes { id } } }"


@pytest.fixture
def cli(mongo_uri: str, settings: Settings) -> CliRunner:
    return CliRunner(
        env={
            "SHOPFRONT_MONGODB_URI": mongo_uri,
            "SHOPFRONT_MONGODB_DATABASE": settings.mongodb_database,
        }
    )


def table_rows(text: str) -> list[list[str]]:
    """The cells of a rich table's header and rows, as printed."""
    rows = []
    for line in text.splitlines():
        line = line.replace("┃", "│")
        if line.startswith("│"):
            rows.append([c.strip() for c in line.strip("│").split("│")])
    return rows


async def invoke(cli: CliRunner, *args: str) -> Result:
    return await asyncio.to_thread(cli.invoke, main, list(args), catch_exceptions=False)


async def test_keys_create_list_revoke(
    cli: CliRunner, store: Store, client: httpx.AsyncClient
) -> None:
    created = await invoke(cli, "keys", "create", "--role", "storefront", "--name", "web shop")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("sf_storefront_") and "\n" not in key
    assert "not shown again" in created.stderr

    graphql = graphql_caller(client, key)
    ok = await graphql(PRODUCTS)
    assert ok == {"data": {"products": {"nodes": []}}}

    listed = await invoke(cli, "keys", "list")
    assert listed.exit_code == 0
    assert listed.stderr.splitlines()[0].startswith("database: ")
    header, cells = table_rows(listed.stdout)
    assert header == [
        "Id",
        "Role",
        "Name",
        "Created",
        "State",
        "Revoked",
    ]
    assert cells[1:3] == ["storefront", "web shop"] and cells[4:] == ["active", "—"]
    assert key not in listed.output
    as_json = await invoke(cli, "keys", "list", "--json")
    [record] = json.loads(as_json.stdout)
    assert (record["role"], record["name"], record["revoked_at"]) == (
        "storefront",
        "web shop",
        None,
    )

    revoked = await invoke(cli, "keys", "revoke", "web shop")
    assert revoked.exit_code == 0 and revoked.stdout.startswith("revoked ")
    listed = await invoke(cli, "keys", "list")
    assert "revoked" in listed.stdout

    refused = await graphql(PRODUCTS)
    assert refused["data"] is None
    assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    unknown = await invoke(cli, "keys", "revoke", "nobody")
    assert unknown.exit_code == 1 and "no key" in unknown.output


async def test_keys_create_refuses_unknown_role(cli: CliRunner, store: Store) -> None:
    result = await invoke(cli, "keys", "create", "--role", "admin", "--name", "x")
    assert result.exit_code == 2
    assert await store.api_keys.count_documents({}) == 0


async def test_import_exit_codes_and_report(cli: CliRunner, store: Store, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("id,title,price_amount,currency\np1,Shoe,1999,EUR\np2,Sock,499,EUR\n")
    result = await invoke(cli, "import", str(good))
    assert result.exit_code == 0, result.output
    assert "good.csv: 2 created, 0 updated, 0 rejected" in result.stdout

    mixed = tmp_path / "mixed.data"
    mixed.write_text(
        '{"id": "p1", "title": "Shoe v2", "price": {"amount": 1, "currency": "EUR"}}\n'
        '{"id": "p3", "title": "Hat"}\n'
        "not json\n"
    )
    result = await invoke(cli, "import", "--format", "jsonl", str(mixed))
    assert result.exit_code == 1
    assert "0 created, 1 updated, 2 rejected" in result.stdout
    assert "line 2: price: is required" in result.stdout
    assert "line 3: invalid JSON" in result.stdout
    p1 = await catalog.get_product(store, "p1")
    assert p1 is not None and p1.title == "Shoe v2"

    unknown = await invoke(cli, "import", str(mixed))
    assert unknown.exit_code == 1 and "--format" in unknown.output


async def test_import_csv_missing_columns_writes_nothing(
    cli: CliRunner, store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,title,price\np1,Shoe,1999\n")
    result = await invoke(cli, "import", str(path))
    assert result.exit_code == 1
    assert "price_amount, currency" in result.output
    assert await store.products.count_documents({}) == 0


async def test_seed_demo(cli: CliRunner, store: Store) -> None:
    refused = await invoke(cli, "seed")
    assert refused.exit_code == 2 and "--demo" in refused.output

    seeded = await invoke(cli, "seed", "--demo")
    assert seeded.exit_code == 0, seeded.output
    assert "500 products (500 created, 0 updated) in 12 categories, 38 brands" in seeded.stdout
    assert await store.products.count_documents({}) == 500

    again = await invoke(cli, "seed", "--demo")
    assert again.exit_code == 1 and "--force" in again.output

    forced = await invoke(cli, "seed", "--demo", "--force")
    assert forced.exit_code == 0 and "0 created, 500 updated" in forced.stdout
