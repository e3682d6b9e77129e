"""The imports API contract."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel, Field


class ImportFormat(StrEnum):
    csv = "csv"
    json = "json"


class FieldError(BaseModel):
    field: str
    message: str


class RejectedRow(BaseModel):
    row: int = Field(description="1-based: the first data row (CSV) or array element (JSON).")
    errors: list[FieldError]


class ImportReport(BaseModel):
    accepted: int = Field(description="Valid rows (created, unless all_or_nothing refused).")
    rejected: list[RejectedRow]
    created_ids: list[uuid.UUID] | None = Field(
        None, description="The new tasks' ids, in row order; absent when nothing was created."
    )
