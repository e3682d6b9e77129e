"""The exports table: one row per requested export, its progress and its file's lifetime."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from primetrade.kit.db import Base, UTCDateTime, new_id, utcnow


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"


class ExportStatus(StrEnum):
    queued = "queued"
    running = "running"
    ready = "ready"
    failed = "failed"
    expired = "expired"


class Export(Base):
    __tablename__ = "exports"
    __table_args__ = (
        Index(None, "owner_id", "created_at", "id"),
        Index(None, "status", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    format: Mapped[ExportFormat] = mapped_column(
        Enum(ExportFormat, native_enum=False, length=8, validate_strings=True)
    )
    status: Mapped[ExportStatus] = mapped_column(
        Enum(ExportStatus, native_enum=False, length=16, validate_strings=True),
        default=ExportStatus.queued,
    )
    # The task-list filters the export was asked for, as JSON (a `TaskQuery` without paging).
    filters: Mapped[dict[str, Any]] = mapped_column(JSON)
    row_count: Mapped[int] = mapped_column(default=0)
    total_rows: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)

    def status_at(self, now: datetime) -> ExportStatus:
        """The status as a client sees it: a ready file past its lifetime is expired already,
        even before the purge job has deleted it."""
        if self.status is ExportStatus.ready and self.expires_at and self.expires_at <= now:
            return ExportStatus.expired
        return self.status
