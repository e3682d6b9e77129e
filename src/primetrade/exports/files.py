"""Export files: the row format of each file type, and writing one safely.

A file is written under a temporary name beside its final one and renamed when complete,
so a reader (or the purge) never sees half a file; the rename is atomic on one filesystem.
A build killed half-way leaves only the temporary file, which the next build truncates.

The CSV has one column per field of a task as the API shows it; `tags` are separated by
spaces (a normalised tag never contains whitespace) and an absent time is an empty cell.
The JSON file is an array of the API's task objects. Both are what an import reads back.
"""

from __future__ import annotations

import csv
import io
import os
import uuid
from pathlib import Path
from typing import IO, Any

import orjson

from primetrade.exports.models import ExportFormat
from primetrade.tasks.schemas import TaskRead

CSV_FIELDS = tuple(TaskRead.model_fields)
MEDIA_TYPES = {ExportFormat.csv: "text/csv; charset=utf-8", ExportFormat.json: "application/json"}


def final_path(directory: str, export_id: uuid.UUID, file_format: ExportFormat) -> Path:
    return Path(directory) / f"{export_id}.{file_format.value}"


def download_name(export_id: uuid.UUID, file_format: ExportFormat) -> str:
    return f"tasks-{export_id}.{file_format.value}"


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(value)
    return str(value)


def _csv_text(rows: list[TaskRead]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        data = row.model_dump(mode="json")
        writer.writerow([_csv_cell(data[name]) for name in CSV_FIELDS])
    return buffer.getvalue()


class ExportWriter:
    """Writes one export file; blocking, so the async build calls it in a thread."""

    def __init__(self, path: Path, file_format: ExportFormat) -> None:
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self.format = file_format
        self._file: IO[str] | None = None
        self._rows = 0

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # "w" truncates whatever a killed build left under the temporary name.
        self._file = self.part.open("w", encoding="utf-8", newline="")
        if self.format is ExportFormat.csv:
            self._file.write(",".join(CSV_FIELDS) + "\r\n")
        else:
            self._file.write("[")

    def write(self, rows: list[TaskRead]) -> None:
        assert self._file is not None
        if self.format is ExportFormat.csv:
            self._file.write(_csv_text(rows))
        else:
            for row in rows:
                separator = "\n" if self._rows == 0 else ",\n"
                self._file.write(separator + orjson.dumps(row.model_dump(mode="json")).decode())
                self._rows += 1
        self._file.flush()

    def commit(self) -> None:
        """Finish the file, make it durable, and give it its final name."""
        assert self._file is not None
        if self.format is ExportFormat.json:
            self._file.write("\n]\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.part, self.path)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
        self.part.unlink(missing_ok=True)
