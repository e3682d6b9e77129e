"""The tables of background work: the outbox, the runs of jobs and the dead letters."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from primetrade.kit.db import Base, UTCDateTime, new_id, utcnow


class OutboxEntry(Base):
    """A job written in the same transaction as the change that caused it.

    `published_at` is set once the relay handed the job on (to the broker, or, without one,
    once the in-process runner finished it). `available_at` is when the relay may next take
    the row: its creation, a retry after a failed publish, or the end of a relay's lease.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index(None, "published_at", "available_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    job_type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Deduplicates enqueues: a second row with the same key is never written.
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    # Who the job is for idempotency: the explicit key, else `outbox:<id>`. A dead job retried
    # by an admin gets a new row with the same run key.
    run_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class JobRun(Base):
    """One job's executions, keyed by its run key: a redelivered finished job is skipped."""

    __tablename__ = "job_runs"
    __table_args__ = (Index(None, "finished_at"),)

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    job_type: Mapped[str] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))  # running, done or dead
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeadJob(Base):
    """A job that failed on every attempt; an admin can list it and send it again."""

    __tablename__ = "dead_jobs"
    __table_args__ = (Index(None, "failed_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    job_type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    run_key: Mapped[str] = mapped_column(String(255))
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retried_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
