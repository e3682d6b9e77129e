"""Exports: ask for one (a job in the outbox), follow it, download it; the build and purge."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from primetrade.exports.exceptions import (
    ExportExpired,
    ExportFailed,
    ExportNotFound,
    ExportNotReady,
)
from primetrade.exports.files import ExportWriter, final_path
from primetrade.exports.models import Export, ExportStatus
from primetrade.exports.repository import ExportRepository
from primetrade.exports.schemas import ExportCreate, task_query
from primetrade.jobs import enqueue
from primetrade.kit.db import session_scope, utcnow
from primetrade.kit.logging import get_logger
from primetrade.settings import Settings
from primetrade.tasks.repository import TaskRepository, sort_key
from primetrade.tasks.schemas import TaskQuery, TaskRead
from primetrade.users.models import User

log = get_logger(__name__)
BUILD_JOB = "exports.build"
PURGE_BATCH = 200


async def create(session: AsyncSession, owner: User, data: ExportCreate) -> Export:
    """Record an export and enqueue its build in the same transaction."""
    export = await ExportRepository(session).add(
        Export(owner_id=owner.id, format=data.format, filters=data.filters(), created_at=utcnow())
    )
    await enqueue(session, BUILD_JOB, {"export_id": str(export.id)}, key=f"export:{export.id}")
    return export


async def get_visible(session: AsyncSession, owner: User, export_id: uuid.UUID) -> Export:
    """One of the user's exports; anyone else's is a 404."""
    export = await ExportRepository(session).get_visible(owner.id, export_id)
    if export is None:
        raise ExportNotFound()
    return export


async def newest(session: AsyncSession, owner: User, limit: int) -> list[Export]:
    """The user's latest exports, newest first."""
    return list(await ExportRepository(session).newest(owner.id, limit))


def ready_file(export: Export, settings: Settings) -> Path:
    """The file of a ready export; 409 while it is being built, 404 once it expired."""
    status = export.status_at(utcnow())
    if status is ExportStatus.expired:
        raise ExportExpired()
    if status is ExportStatus.failed:
        raise ExportFailed()
    if status is not ExportStatus.ready:
        raise ExportNotReady(status.value)
    path = final_path(settings.export_dir, export.id, export.format)
    if not path.is_file():  # deleted by hand or on another machine's disk: gone for the client
        raise ExportExpired()
    return path


# --- The build (a job) ---------------------------------------------------------------------


async def build(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    read_sessions: async_sessionmaker[AsyncSession],
    export_id: uuid.UUID,
) -> None:
    """Write the export's file batch by batch, recording progress; do nothing if it is done.

    A redelivered build of an export that is running (its worker was killed) starts over:
    the rows are read again from the first, and the temporary file is truncated.
    """
    started = await _start(sessions, export_id)
    if started is None:
        return
    export, query, now = started
    writer = ExportWriter(final_path(settings.export_dir, export.id, export.format), export.format)
    await asyncio.to_thread(writer.open)
    try:
        written = await _write_rows(sessions, read_sessions, export, query, now, writer, settings)
        await asyncio.to_thread(writer.commit)
    except BaseException:
        await asyncio.to_thread(writer.discard)
        raise
    await _finish(sessions, export.id, written, settings)
    log.info("export_ready", export_id=str(export.id), rows=written)


async def _start(
    sessions: async_sessionmaker[AsyncSession], export_id: uuid.UUID
) -> tuple[Export, TaskQuery, datetime] | None:
    async with session_scope(sessions) as session:
        export = await ExportRepository(session).get(export_id, for_update=True)
        if export is None or export.status not in (ExportStatus.queued, ExportStatus.running):
            return None
        now = utcnow()
        query = task_query(export.filters)
        export.status, export.row_count = ExportStatus.running, 0
        export.total_rows = await _count(session, export.owner_id, query, now)
    return export, query, now


async def _count(
    session: AsyncSession, owner_id: uuid.UUID, query: TaskQuery, now: datetime
) -> int:
    repo = TaskRepository(session)
    return await repo.count(_statement(repo, owner_id, query, now))


def _statement(repo: TaskRepository, owner_id: uuid.UUID, query: TaskQuery, now: datetime) -> Any:
    statement = repo.filtered(owner_id, query, now)
    return repo.searched(statement, query.search_words) if query.search_words else statement


async def _write_rows(
    sessions: async_sessionmaker[AsyncSession],
    read_sessions: async_sessionmaker[AsyncSession],
    export: Export,
    query: TaskQuery,
    now: datetime,
    writer: ExportWriter,
    settings: Settings,
) -> int:
    """Keyset batches in the list's order (never OFFSET); progress saved after each batch."""
    key, batch = sort_key(query.effective_sort), settings.export_batch_size
    after: tuple[Any, uuid.UUID] | None = None
    written = 0
    while True:
        async with session_scope(read_sessions) as session:
            repo = TaskRepository(session)
            statement = _statement(repo, export.owner_id, query, now)
            rows = await repo.page(statement, key, after=after, limit=batch)
        tasks = [TaskRead.model_validate(row) for row, _ in rows[:batch]]
        await asyncio.to_thread(writer.write, tasks)
        written += len(tasks)
        await _progress(sessions, export.id, written)
        if len(rows) <= batch:
            return written
        last_row, last_value = rows[batch - 1]
        after = (None if last_value is None else key.load(last_value), last_row.id)


async def _progress(
    sessions: async_sessionmaker[AsyncSession], export_id: uuid.UUID, written: int
) -> None:
    async with session_scope(sessions) as session:
        export = await ExportRepository(session).get(export_id)
        if export is not None:
            export.row_count = written


async def _finish(
    sessions: async_sessionmaker[AsyncSession],
    export_id: uuid.UUID,
    written: int,
    settings: Settings,
) -> None:
    async with session_scope(sessions) as session:
        export = await ExportRepository(session).get(export_id, for_update=True)
        if export is None:
            return
        now = utcnow()
        export.status, export.row_count, export.total_rows = ExportStatus.ready, written, written
        export.finished_at = now
        export.expires_at = now + timedelta(seconds=settings.export_ttl_seconds)


async def mark_failed(
    sessions: async_sessionmaker[AsyncSession], export_id: uuid.UUID, error: str
) -> None:
    """The build gave up (its retries are spent): say so instead of `running` forever."""
    async with session_scope(sessions) as session:
        export = await ExportRepository(session).get(export_id, for_update=True)
        if export is not None and export.status is not ExportStatus.ready:
            export.status, export.error = ExportStatus.failed, error[:2000]


async def purge_expired(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    """Delete the files of exports past their lifetime and mark them expired; how many."""
    purged = 0
    while True:
        async with session_scope(sessions) as session:
            exports = await ExportRepository(session).past_lifetime(utcnow(), PURGE_BATCH)
            for export in exports:
                path = final_path(settings.export_dir, export.id, export.format)
                await asyncio.to_thread(path.unlink, missing_ok=True)
                export.status = ExportStatus.expired
        purged += len(exports)
        if len(exports) < PURGE_BATCH:
            return purged
