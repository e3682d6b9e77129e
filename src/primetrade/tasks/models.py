"""The task table: every row keyed by its owner, so it can be distributed by owner later."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, SmallInteger, String, Text, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Enum, TypeDecorator

from primetrade.kit.db import Base, UTCDateTime, new_id, utcnow


class TaskStatus(StrEnum):
    todo = "todo"
    in_progress = "in_progress"
    done = "done"


class TaskPriority(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    urgent = "urgent"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {p: i for i, p in enumerate(TaskPriority, start=1)}
_PRIORITY_BY_RANK = {i: p for p, i in _PRIORITY_RANK.items()}


class PriorityType(TypeDecorator[TaskPriority]):
    """Priorities stored as their rank, so `ORDER BY priority` is urgency order on any engine."""

    impl = SmallInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else TaskPriority(value).rank

    def process_result_value(self, value: int | None, dialect: Dialect) -> TaskPriority | None:
        return None if value is None else _PRIORITY_BY_RANK[value]


TagList = JSON().with_variant(JSONB(), "postgresql")


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index(None, "id"),
        Index(None, "owner_id", "created_at", "id"),
        Index(None, "owner_id", "updated_at", "id"),
        Index(None, "owner_id", "due_at", "id"),
        Index(None, "owner_id", "priority", "id"),
        Index(None, "owner_id", "title_key", "id"),
        Index(None, "owner_id", "status"),
        # PostgreSQL only (SQLite indexes cannot say NULLS LAST): `-due_at` in index order.
        Index(
            "ix_tasks_owner_id_due_at_desc_id",
            "owner_id",
            text("due_at DESC NULLS LAST"),
            text("id DESC"),
        ).ddl_if(dialect="postgresql"),
        # Partial indexes over live (unarchived) rows: the default list and the archiving job.
        Index(
            "ix_tasks_owner_id_created_at_id_live",
            "owner_id",
            "created_at",
            "id",
            sqlite_where=text("archived_at IS NULL"),
            postgresql_where=text("archived_at IS NULL"),
        ),
        Index(
            "ix_tasks_completed_at_live",
            "completed_at",
            sqlite_where=text("archived_at IS NULL"),
            postgresql_where=text("archived_at IS NULL"),
        ),
        Index(
            "ix_tasks_owner_id_archived_at",
            "owner_id",
            "archived_at",
            sqlite_where=text("archived_at IS NOT NULL"),
            postgresql_where=text("archived_at IS NOT NULL"),
        ),
    )

    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200))
    # Case-folded title: sorting by title is case-insensitive and identical on every engine.
    title_key: Mapped[str] = mapped_column(String(800))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[TaskStatus] = mapped_column(
        Enum(TaskStatus, native_enum=False, length=16, validate_strings=True),
        default=TaskStatus.todo,
    )
    priority: Mapped[TaskPriority] = mapped_column(PriorityType, default=TaskPriority.medium)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tags: Mapped[list[str]] = mapped_column(TagList, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when archived: out of the default lists and the stats until restored.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column()

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
