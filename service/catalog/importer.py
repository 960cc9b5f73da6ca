"""Catalog import from JSONL or CSV files (`shopfront import FILE`).

The file is streamed: rows are parsed one at a time, validated with
`catalog.validate_product`, and written in batches through `catalog.upsert_products`, so
memory stays flat whatever the file's size. A bad row never stops the import: it is rejected
with its line number and a reason naming the field (the CSV column, for CSV files), and the
good rows around it are kept.

Problems with the file as a whole (unknown format, a CSV header with missing or unknown
columns, an unreadable file) raise `ImportFileError` before anything is written.

Formats
- JSONL: one JSON object per line with the product's fields (``id``, ``title``,
  ``description``, ``category_path`` (list), ``brand``, ``tags`` (list), ``price``
  (``{"amount": 1999, "currency": "EUR"}``), ``stock``, ``active``, ``image_url``,
  ``attributes`` (object of strings)); the GraphQL spellings ``categoryPath`` and
  ``imageUrl`` are accepted too. Blank lines are skipped.
- CSV (UTF-8, header row): ``id,title,description,category_path,brand,tags,price_amount,
  currency,stock,active,image_url`` plus one ``attr.<name>`` column per attribute.
  ``category_path`` is written ``Shoes > Running``, ``tags`` ``a|b``, ``price_amount`` in
  minor units (``1999`` for 19.99 EUR), ``active`` as true/false (empty means true), an
  empty ``stock`` means 0 and an empty ``attr.*`` cell means the product lacks it.
  Required columns: ``id,title,price_amount,currency``.

Each product id may appear once per file; a repeat is rejected naming the first line.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

from shopfront.catalog import products as catalog
from shopfront.platform.store import Store

Format = Literal["jsonl", "csv"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv")
BATCH_SIZE = 500
REQUIRED_CSV_COLUMNS = ("id", "title", "price_amount", "currency")
OPTIONAL_CSV_COLUMNS = (
    "description",
    "category_path",
    "brand",
    "tags",
    "stock",
    "active",
    "image_url",
)
ATTR_PREFIX = "attr."
JSON_FIELDS = frozenset(
    (
        "id",
        "title",
        "description",
        "category_path",
        "brand",
        "tags",
        "price",
        "stock",
        "active",
        "image_url",
        "attributes",
    )
)
JSON_ALIASES = {"categoryPath": "category_path", "imageUrl": "image_url"}
# validate_product names fields as stored; a CSV user knows them by their column.
_CSV_FIELD_NAMES = {"price.amount": "price_amount", "price.currency": "currency"}
_TRUE = frozenset(("true", "1", "yes", "y"))
_FALSE = frozenset(("false", "0", "no", "n"))


class ImportFileError(ValueError):
    """The file cannot be imported at all; nothing was written."""


@dataclass(frozen=True)
class RejectedRow:
    line: int
    id: str | None
    reason: str


@dataclass
class ImportSummary:
    created: int = 0
    updated: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.created + self.updated + len(self.rejected)

    @property
    def ok(self) -> bool:
        return not self.rejected


@dataclass(frozen=True)
class Row:
    """One parsed row: the raw product, or why it could not be read."""

    line: int
    raw: dict[str, Any] | None
    error: str | None = None


def detect_format(path: Path, override: str | None = None) -> Format:
    """``override`` if given, else the extension: ``.jsonl``/``.ndjson`` or ``.csv``."""
    if override is not None:
        lowered = override.lower()
        for fmt in FORMATS:
            if fmt == lowered:
                return fmt
        raise ImportFileError(f"unknown format {override!r}: use jsonl or csv")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise ImportFileError(
        f"cannot tell the format of {path.name!r} from its extension: name it .jsonl or .csv, "
        "or pass --format"
    )


class _Lines:
    """Decoded lines of a binary file, counting line numbers and bytes for progress.

    A line that is not valid UTF-8 is decoded with replacement characters and its number
    remembered, so the row it belongs to is rejected instead of stored garbled.
    """

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.number = 0
        self.bytes_read = 0
        self.undecodable: set[int] = set()

    def __iter__(self) -> Iterator[str]:
        for raw in self._fh:
            self.number += 1
            self.bytes_read += len(raw)
            if self.number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                self.undecodable.add(self.number)
                yield raw.decode("utf-8", "replace")


def _parse_json_line(text: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} (column {exc.colno})"
    if not isinstance(value, dict):
        return None, f"expected a JSON object, got {type(value).__name__}"
    raw: dict[str, Any] = {}
    for key, item in value.items():
        name = JSON_ALIASES.get(key, key)
        if name not in JSON_FIELDS:
            return None, f"{key}: unknown field (known: {', '.join(sorted(JSON_FIELDS))})"
        if name in raw:
            return None, f"{name}: given twice (as {name} and as its alias)"
        raw[name] = item
    return raw, None


def _jsonl_rows(lines: _Lines) -> Iterator[Row]:
    for text in lines:
        number = lines.number
        if number in lines.undecodable:
            yield Row(number, None, "not valid UTF-8 text")
        elif text.strip():
            raw, error = _parse_json_line(text)
            yield Row(number, raw, error)


@dataclass(frozen=True)
class _CsvLayout:
    columns: tuple[str, ...]

    @classmethod
    def from_header(cls, header: list[str]) -> _CsvLayout:
        columns = tuple(c.strip() for c in header)
        missing = [c for c in REQUIRED_CSV_COLUMNS if c not in columns]
        if missing:
            raise ImportFileError(
                f"the CSV header lacks required column(s): {', '.join(missing)} "
                f"(required: {', '.join(REQUIRED_CSV_COLUMNS)}); nothing was imported"
            )
        known = set(REQUIRED_CSV_COLUMNS) | set(OPTIONAL_CSV_COLUMNS)
        unknown = [
            c for c in columns if c not in known and not (c.startswith(ATTR_PREFIX) and c[5:])
        ]
        if unknown:
            raise ImportFileError(
                f"the CSV header has unknown column(s): {', '.join(map(repr, unknown))} "
                f"(columns: {', '.join((*REQUIRED_CSV_COLUMNS, *OPTIONAL_CSV_COLUMNS))}, "
                f"plus {ATTR_PREFIX}<name> for attributes); nothing was imported"
            )
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise ImportFileError(
                f"the CSV header repeats column(s): {', '.join(repeated)}; nothing was imported"
            )
        return cls(columns)

    def to_raw(self, cells: list[str]) -> dict[str, Any]:
        """The product for one record; raises `catalog.ProductError` naming the column."""
        if len(cells) != len(self.columns):
            raise catalog.ProductError(
                "row", f"has {len(cells)} fields but the header has {len(self.columns)} columns"
            )
        row = {name: value.strip() for name, value in zip(self.columns, cells, strict=True)}
        raw: dict[str, Any] = {
            name: row[name]
            for name in ("id", "title", "description", "brand", "image_url")
            if name in row
        }
        if row.get("category_path"):
            raw["category_path"] = [part.strip() for part in row["category_path"].split(">")]
        if row.get("tags"):
            raw["tags"] = [tag.strip() for tag in row["tags"].split("|")]
        amount = row["price_amount"]
        if not amount:
            raise catalog.ProductError("price_amount", "is required")
        try:
            raw["price"] = {"amount": int(amount), "currency": row["currency"]}
        except ValueError:
            raise catalog.ProductError(
                "price_amount",
                f"must be whole minor units (1999 for 19.99), got {amount!r}",
            ) from None
        if row.get("stock"):
            try:
                raw["stock"] = int(row["stock"])
            except ValueError:
                raise catalog.ProductError(
                    "stock", f"must be a whole number, got {row['stock']!r}"
                ) from None
        if row.get("active"):
            flag = row["active"].lower()
            if flag not in _TRUE | _FALSE:
                raise catalog.ProductError(
                    "active", f"must be true or false, got {row['active']!r}"
                )
            raw["active"] = flag in _TRUE
        raw["attributes"] = {
            name[len(ATTR_PREFIX) :]: value
            for name, value in row.items()
            if name.startswith(ATTR_PREFIX) and value
        }
        return raw


def _csv_rows(lines: _Lines, layout: _CsvLayout, records: Iterator[list[str]]) -> Iterator[Row]:
    while True:
        start = lines.number + 1
        try:
            cells = next(records)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Row(start, None, f"unreadable CSV: {exc}")
            continue
        if not cells or all(not c.strip() for c in cells):
            continue
        if lines.undecodable & set(range(start, lines.number + 1)):
            yield Row(start, None, "not valid UTF-8 text")
            continue
        try:
            yield Row(start, layout.to_raw(cells))
        except catalog.ProductError as exc:
            yield Row(start, None, str(exc))


class RowSource:
    """The rows of one file, read lazily. Opening checks what can be checked up front
    (format, readability, the CSV header) and raises `ImportFileError`."""

    def __init__(self, path: Path, fmt: str | None = None) -> None:
        self.path = path
        self.format = detect_format(path, fmt)
        try:
            self.total_bytes = path.stat().st_size
            self._fh: IO[bytes] = path.open("rb")
        except OSError as exc:
            raise ImportFileError(f"cannot read {path}: {exc.strerror}") from None
        self._lines = _Lines(self._fh)
        try:
            self._rows = self._open_rows()
        except BaseException:
            self.close()
            raise

    def _open_rows(self) -> Iterator[Row]:
        if self.format == "jsonl":
            return _jsonl_rows(self._lines)
        records = csv.reader(iter(self._lines))
        try:
            header = next(records)
        except StopIteration:
            raise ImportFileError(
                f"{self.path.name} is empty: a CSV needs a header row "
                f"({', '.join(REQUIRED_CSV_COLUMNS)}, ...)"
            ) from None
        except csv.Error as exc:
            raise ImportFileError(f"the CSV header cannot be read: {exc}") from None
        if self._lines.undecodable:
            raise ImportFileError("the CSV header is not valid UTF-8 text")
        return _csv_rows(self._lines, _CsvLayout.from_header(header), records)

    @property
    def bytes_read(self) -> int:
        return self._lines.bytes_read

    def __iter__(self) -> Iterator[Row]:
        return self._rows

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RowSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _reason(error: catalog.ProductError, fmt: Format) -> str:
    if fmt != "csv" or error.field not in _CSV_FIELD_NAMES:
        return str(error)
    message = str(error).removeprefix(f"{error.field}: ")
    return f"{_CSV_FIELD_NAMES[error.field]}: {message}"


async def import_products(
    store: Store,
    source: RowSource,
    *,
    batch_size: int = BATCH_SIZE,
    on_progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Validate and upsert every row of ``source``; returns counts and the rejected rows.

    ``on_progress(bytes_read)`` is called after each row. Rows are written in batches of
    ``batch_size``; rows already written stay written if a later batch fails.
    """
    summary = ImportSummary()
    seen: dict[str, int] = {}
    pending: list[tuple[int, dict[str, Any]]] = []

    async def flush() -> None:
        results = await catalog.upsert_products(store, [raw for _, raw in pending])
        for result in results:
            line = pending[result.index][0]
            if result.status is catalog.UpsertStatus.CREATED:
                summary.created += 1
            elif result.status is catalog.UpsertStatus.UPDATED:
                summary.updated += 1
            else:
                summary.rejected.append(RejectedRow(line, result.id, result.reason or "rejected"))
        pending.clear()

    for row in source:
        raw_id = row.raw.get("id") if row.raw is not None else None
        row_id = raw_id.strip() if isinstance(raw_id, str) else None
        if row.raw is None:
            summary.rejected.append(RejectedRow(row.line, row_id, row.error or "unreadable"))
        else:
            try:
                product = catalog.validate_product(row.raw)
            except catalog.ProductError as exc:
                summary.rejected.append(RejectedRow(row.line, row_id, _reason(exc, source.format)))
            else:
                first = seen.setdefault(product.id, row.line)
                if first != row.line:
                    summary.rejected.append(
                        RejectedRow(
                            row.line,
                            product.id,
                            f"id: {product.id!r} already appears on line {first} "
                            "(each product once per file)",
                        )
                    )
                else:
                    pending.append((row.line, row.raw))
                    if len(pending) >= batch_size:
                        await flush()
        if on_progress is not None:
            on_progress(source.bytes_read)
    if pending:
        await flush()
    summary.rejected.sort(key=lambda r: r.line)
    return summary
