"""The exports API contract."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool

from primetrade.exports.models import Export, ExportFormat, ExportStatus
from primetrade.tasks.models import TaskPriority, TaskStatus
from primetrade.tasks.schemas import MAX_TAGS, Tag, TaskQuery


class ExportCreate(BaseModel):
    """A file of your tasks, with the filters of the task list (same meaning, same order)."""

    model_config = ConfigDict(extra="forbid")

    format: ExportFormat
    status: list[TaskStatus] = Field(default_factory=list, max_length=3)
    priority: list[TaskPriority] = Field(default_factory=list, max_length=4)
    tag: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    due_before: AwareDatetime | None = None
    due_after: AwareDatetime | None = None
    overdue: StrictBool | None = None
    q: str | None = Field(None, max_length=200)
    archived: StrictBool = False

    def filters(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"format"})


def task_query(filters: dict[str, Any]) -> TaskQuery:
    """The list query an export's filters stand for (its default order included)."""
    return TaskQuery.model_validate(filters)


class ExportRead(BaseModel):
    id: uuid.UUID
    status: ExportStatus
    format: ExportFormat
    created_at: datetime
    row_count: int = Field(description="Rows written so far (all of them once ready).")
    progress: float = Field(ge=0, le=1, description="Share of the rows written, 0 to 1.")
    expires_at: datetime | None = Field(description="When the file is deleted (once ready).")

    @classmethod
    def of(cls, export: Export, now: datetime) -> ExportRead:
        status = export.status_at(now)
        return cls(
            id=export.id,
            status=status,
            format=export.format,
            created_at=export.created_at,
            row_count=export.row_count,
            progress=_progress(export, status),
            expires_at=export.expires_at,
        )


def _progress(export: Export, status: ExportStatus) -> float:
    if status in (ExportStatus.ready, ExportStatus.expired):
        return 1.0
    if not export.total_rows:
        return 0.0
    return min(1.0, export.row_count / export.total_rows)


class ExportList(BaseModel):
    items: list[ExportRead]
