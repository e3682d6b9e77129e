"""Reading an import file into rows: CSV or JSON, including exactly the export format.

The fields an export adds that a new task cannot take (`id`, `version`, the times the
service keeps) are dropped; any other unknown field is an error of its row. CSV cells are
strings: an empty cell means "not given" (the default applies; `due_at` stays unset), and
`tags` are separated by
spaces (as exported: a normalised tag never contains whitespace).
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from primetrade.imports.exceptions import ImportTooLarge, UnreadableImport
from primetrade.imports.schemas import ImportFormat

EXPORT_ONLY = frozenset(
    {"id", "version", "created_at", "updated_at", "completed_at", "archived_at", "owner_id"}
)


def parse(data: bytes, file_format: ImportFormat, *, max_rows: int) -> list[Any]:
    """The rows of the file (each a dict when well formed); 422 when it is not CSV/JSON."""
    rows = _csv_rows(data) if file_format is ImportFormat.csv else _json_rows(data)
    if len(rows) > max_rows:
        raise ImportTooLarge(f"The import has {len(rows)} rows; at most {max_rows} are taken.")
    return [_without_export_fields(row) for row in rows]


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableImport("The file is not UTF-8 text.") from exc


def _csv_rows(data: bytes) -> list[Any]:
    reader = csv.DictReader(io.StringIO(_text(data), newline=""))
    try:
        # Every task has a title, so a header without one is the wrong file, not bad rows.
        if "title" not in (reader.fieldnames or ()):
            raise UnreadableImport("A CSV import starts with a header row naming `title`.")
        return [_csv_row(row) for row in reader]
    except csv.Error as exc:
        raise UnreadableImport(f"The CSV cannot be read: {exc}.") from exc


def _csv_row(row: dict[str | None, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, cell in row.items():
        if name is None:  # more cells than the header has columns
            values["(extra cells)"] = cell
        elif cell not in (None, ""):
            values[name] = cell.split() if name == "tags" else cell
    return values


def _json_rows(data: bytes) -> list[Any]:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UnreadableImport(f"The JSON cannot be read: {exc}.") from exc
    if not isinstance(document, list):
        raise UnreadableImport("A JSON import is an array of task objects.")
    return document


def _without_export_fields(row: Any) -> Any:
    if not isinstance(row, dict):
        return row
    return {name: value for name, value in row.items() if name not in EXPORT_ONLY}
