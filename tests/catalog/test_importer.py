"""Catalog import from JSONL and CSV: line numbers, reasons naming the field, nothing
half-written when the file itself is wrong."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shopfront.catalog import products as catalog
from shopfront.catalog.importer import (
    ImportFileError,
    ImportSummary,
    RowSource,
    detect_format,
    import_products,
)
from shopfront.platform.store import Store

HEADER = (
    "id,title,description,category_path,brand,tags,price_amount,currency,stock,active,"
    "image_url,attr.color,attr.size"
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


async def run_import(store: Store, path: Path, **kwargs: Any) -> ImportSummary:
    with RowSource(path, kwargs.pop("fmt", None)) as source:
        return await import_products(store, source, **kwargs)


def jsonl(*rows: Any) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


def item(pid: str, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": pid,
        "title": f"Product {pid}",
        "price": {"amount": 1999, "currency": "EUR"},
        "stock": 3,
    }
    base.update(over)
    return base


async def test_jsonl_import_with_rejected_lines(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "catalog.jsonl",
        jsonl(
            item("a", categoryPath=["Shoes", "Running"], imageUrl="https://img.example/a.png"),
            '{"id": "b", "title": "broken",',
            "",
            item("c", price={"amount": -1, "currency": "EUR"}),
            "[1, 2]",
            item("d", colour="red"),
            item("e", price={"amount": 100, "currency": "EUX"}),
            item("f", attributes={"material": "wool"}),
        ),
    )
    summary = await run_import(store, path)
    assert (summary.created, summary.updated) == (2, 0)
    rejected = [(r.line, r.reason) for r in summary.rejected]
    assert [line for line, _ in rejected] == [2, 4, 5, 6, 7]
    assert rejected[0][1].startswith("invalid JSON")
    assert rejected[1][1].startswith("price.amount:") and "negative" in rejected[1][1]
    assert "JSON object" in rejected[2][1]
    assert rejected[3][1].startswith("colour: unknown field")
    assert rejected[4][1].startswith("price.currency:")
    a = await catalog.get_product(store, "a")
    assert a is not None
    assert a.category_path == ("Shoes", "Running")
    assert a.image_url == "https://img.example/a.png"
    f = await catalog.get_product(store, "f")
    assert f is not None and f.attributes == {"material": "wool"}


async def test_reimport_updates_and_duplicates_are_rejected_across_batches(
    store: Store, tmp_path: Path
) -> None:
    rows = [item(f"p{i}") for i in range(5)]
    path = write(tmp_path / "c.jsonl", jsonl(*rows))
    first = await run_import(store, path, batch_size=2)
    assert (first.created, first.updated, first.rejected) == (5, 0, [])
    rows[3]["title"] = "Renamed"
    path = write(tmp_path / "c.jsonl", jsonl(*rows, item("p1", title="Again")))
    second = await run_import(store, path, batch_size=2)
    assert (second.created, second.updated) == (0, 5)
    [dup] = second.rejected
    assert dup.line == 6 and "already appears on line 2" in dup.reason
    p3 = await catalog.get_product(store, "p3")
    p1 = await catalog.get_product(store, "p1")
    assert p3 is not None and p3.title == "Renamed"
    assert p1 is not None and p1.title == "Product p1"


async def test_csv_import_maps_columns(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "catalog.csv",
        HEADER + "\n"
        'a1,Trail Runner,"Grippy, light",Shoes > Running,Stride,trail|road,12999,EUR,7,true,'
        "/img/a1.svg,red,EU 42\n"
        "a2,Plain Tee,,,,,1500,eur,,false,,,\n",
    )
    summary = await run_import(store, path)
    assert (summary.created, summary.rejected) == (2, [])
    a1 = await catalog.get_product(store, "a1")
    assert a1 is not None
    assert a1.description == "Grippy, light"
    assert a1.category_path == ("Shoes", "Running")
    assert a1.tags == ("trail", "road")
    assert (a1.price.amount, a1.price.currency, a1.stock, a1.active) == (12999, "EUR", 7, True)
    assert a1.attributes == {"color": "red", "size": "EU 42"}
    a2 = await catalog.get_product(store, "a2", include_inactive=True)
    assert a2 is not None
    assert (a2.stock, a2.active, a2.attributes, a2.price.currency) == (0, False, {}, "EUR")


async def test_csv_rejections_name_line_and_column(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "catalog.csv",
        "id,title,price_amount,currency,stock,active\n"
        "ok1,Fine,100,EUR,1,true\n"
        'multi,"A title\nover two lines",100,EUR,1,yes\n'
        "x1,Cents,19.99,EUR,1,\n"
        "x2,Negative,-5,EUR,1,\n"
        "x3,Currency,100,EUX,1,\n"
        ",No id,100,EUR,1,\n"
        "x5,Stock,100,EUR,lots,\n"
        "x6,Active,100,EUR,1,maybe\n"
        "x7,Short,100\n"
        "ok1,Again,100,EUR,1,\n",
    )
    summary = await run_import(store, path)
    assert summary.created == 2
    got = {r.line: r.reason for r in summary.rejected}
    assert sorted(got) == [5, 6, 7, 8, 9, 10, 11, 12]
    assert got[5].startswith("price_amount:") and "19.99" in got[5]
    assert got[6].startswith("price_amount:") and "negative" in got[6]
    assert got[7].startswith("currency:") and "ISO 4217" in got[7]
    assert got[8].startswith("id:")
    assert got[9].startswith("stock:")
    assert got[10].startswith("active:")
    assert "3 fields" in got[11] and "6 columns" in got[11]
    assert "line 2" in got[12]
    multi = await catalog.get_product(store, "multi")
    assert multi is not None and multi.title == "A title\nover two lines"


async def test_csv_missing_columns_fail_up_front(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,name,amount,currency\np1,Shoe,100,EUR\n")
    with pytest.raises(ImportFileError) as err:
        RowSource(path)
    message = str(err.value)
    assert "title" in message and "price_amount" in message
    assert "nothing was imported" in message
    assert await store.products.count_documents({}) == 0


def test_csv_header_problems(tmp_path: Path) -> None:
    base = "id,title,price_amount,currency"
    with pytest.raises(ImportFileError, match=r"unknown column.*'prce'"):
        RowSource(write(tmp_path / "a.csv", base + ",prce\n"))
    with pytest.raises(ImportFileError, match=r"repeats column.*title"):
        RowSource(write(tmp_path / "b.csv", base + ",title\n"))
    with pytest.raises(ImportFileError, match=r"unknown column.*'attr\.'"):
        RowSource(write(tmp_path / "c.csv", base + ",attr.\n"))
    with pytest.raises(ImportFileError, match="empty"):
        RowSource(write(tmp_path / "d.csv", ""))


async def test_bad_utf8_line_is_rejected_alone(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(
        json.dumps(item("a")).encode() + b"\n"
        b'{"id": "b", "title": "caf\xe9", "price": {"amount": 1, "currency": "EUR"}}\n'
        + json.dumps(item("c")).encode()
        + b"\n"
    )
    summary = await run_import(store, path)
    assert summary.created == 2
    assert [(r.line, r.reason) for r in summary.rejected] == [(2, "not valid UTF-8 text")]


async def test_csv_with_byte_order_mark(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfid,title,price_amount,currency\r\np1,Shoe,100,EUR\r\n")
    summary = await run_import(store, path)
    assert (summary.created, summary.rejected) == (1, [])


async def test_progress_reports_bytes(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", jsonl(*(item(f"p{i}") for i in range(3))))
    seen: list[int] = []
    with RowSource(path) as source:
        await import_products(store, source, on_progress=seen.append)
        assert source.total_bytes == path.stat().st_size
    assert seen == sorted(seen) and seen[-1] == path.stat().st_size


def test_format_detection(tmp_path: Path) -> None:
    assert detect_format(Path("a.jsonl")) == "jsonl"
    assert detect_format(Path("a.NDJSON")) == "jsonl"
    assert detect_format(Path("a.csv")) == "csv"
    assert detect_format(Path("a.txt"), "CSV") == "csv"
    with pytest.raises(ImportFileError, match="--format"):
        detect_format(Path("a.txt"))
    with pytest.raises(ImportFileError, match="unknown format"):
        detect_format(Path("a.csv"), "xml")


# Cell text a spreadsheet could hold: anything printable, including the CSV syntax itself.
_cell = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=30
).map(str.strip)
_word = _cell.filter(lambda s: s != "" and ">" not in s and "|" not in s)


@settings(max_examples=60, deadline=None)
@given(
    title=_cell.filter(bool),
    description=_cell,
    path=st.lists(_word, max_size=3),
    tags=st.lists(_word, max_size=4),
    amount=st.integers(min_value=0, max_value=10**12),
    stock=st.integers(min_value=0, max_value=10**6),
    active=st.booleans(),
    color=_cell,
)
def test_csv_round_trip(
    tmp_path_factory: pytest.TempPathFactory,
    title: str,
    description: str,
    path: list[str],
    tags: list[str],
    amount: int,
    stock: int,
    active: bool,
    color: str,
) -> None:
    """Any product a spreadsheet writes with the csv module reads back as the same product."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER.split(","))
    cells = ["p-1", title, description, " > ".join(path), "Brand", "|".join(tags), amount]
    writer.writerow([*cells, "EUR", stock, str(active).lower(), "", color, ""])
    file = tmp_path_factory.mktemp("rt") / "c.csv"
    file.write_text(buffer.getvalue(), encoding="utf-8")
    with RowSource(file) as source:
        [row] = list(source)
    assert row.error is None and row.raw is not None and row.line == 2
    product = catalog.validate_product(row.raw)
    assert (product.title, product.description) == (title, description)
    assert product.category_path == tuple(path)
    assert product.tags == tuple(tags)
    assert (product.price.amount, product.stock, product.active) == (amount, stock, active)
    assert product.attributes == ({"color": color} if color else {})
