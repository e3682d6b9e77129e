"""The transactional outbox: a job is a row written in the transaction of the change.

`enqueue` adds the row to the caller's session; it commits or rolls back with everything
else. After commit the relay of this process is woken at once; relays of other processes
find the row on their next poll.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from primetrade.jobs.models import OutboxEntry
from primetrade.jobs.registry import job_types
from primetrade.kit.db import after_commit, new_id, upsert, utcnow


async def enqueue(
    session: AsyncSession,
    job_type: str,
    payload: dict[str, Any],
    *,
    key: str | None = None,
    delay_seconds: float = 0.0,
) -> uuid.UUID | None:
    """Write a job into the outbox, in the caller's transaction.

    With a `key`, a second enqueue of the same key is dropped (returns None) for as long as
    the first row is kept (JOB_RETENTION_SECONDS), and the job runs at most once under it.
    """
    if job_type not in job_types():
        raise ValueError(f"unknown job type {job_type!r}")
    orjson.dumps(payload)  # a payload that is not JSON fails here, not in a worker
    entry_id = new_id()
    now = utcnow()
    values = {
        "id": entry_id,
        "job_type": job_type,
        "payload": payload,
        "dedupe_key": key,
        "run_key": key or f"outbox:{entry_id}",
        "created_at": now,
        "available_at": now + timedelta(seconds=delay_seconds),
        "attempts": 0,
    }
    inserted = await session.scalar(_insert_ignoring_duplicates(session, values))
    if inserted is None:
        return None
    after_commit(session, wake_relays)
    return entry_id


def _insert_ignoring_duplicates(session: AsyncSession, values: dict[str, Any]) -> Any:
    return (
        upsert(session, OutboxEntry)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(OutboxEntry.id)
    )


async def enqueue_again(
    session: AsyncSession, job_type: str, payload: dict[str, Any], run_key: str
) -> uuid.UUID:
    """A new row for a job that already has a run key (an admin's retry of a dead job)."""
    entry = OutboxEntry(
        id=new_id(), job_type=job_type, payload=payload, run_key=run_key, attempts=0
    )
    session.add(entry)
    await session.flush()
    after_commit(session, wake_relays)
    return entry.id


# --- Waking the relays of this process -----------------------------------------------------

_relay_events: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()


def register_relay(event: asyncio.Event) -> None:
    _relay_events.add((asyncio.get_running_loop(), event))


def unregister_relay(event: asyncio.Event) -> None:
    _relay_events.difference_update({pair for pair in _relay_events if pair[1] is event})


def wake_relays() -> None:
    """Tell this process's relays that a job was committed (they need not wait for a poll)."""
    for loop, event in list(_relay_events):
        if not loop.is_closed():
            loop.call_soon_threadsafe(event.set)


# --- What the relay and the operators need ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    id: uuid.UUID
    job_type: str
    payload: dict[str, Any]
    run_key: str
    attempts: int


def _due(now: datetime) -> Select[Any]:
    return select(OutboxEntry).where(
        OutboxEntry.published_at.is_(None), OutboxEntry.available_at <= now
    )


async def has_due(session: AsyncSession) -> bool:
    """Whether any row waits (a cheap read before taking write locks)."""
    statement = select(_due(utcnow()).with_only_columns(OutboxEntry.id).limit(1).exists())
    return bool(await session.scalar(statement))


async def claim(session: AsyncSession, *, limit: int, lease_seconds: float) -> list[Claimed]:
    """Take up to `limit` due rows for this relay until the lease ends.

    On PostgreSQL `FOR UPDATE SKIP LOCKED` lets relays of many instances take disjoint rows
    at once; on SQLite the transaction holds the write lock (BEGIN IMMEDIATE), which
    serialises relays just the same. A relay that dies holding a lease leaves its rows to be
    taken again when the lease ends.
    """
    now = utcnow()
    statement = (
        _due(now).order_by(OutboxEntry.available_at).limit(limit).with_for_update(skip_locked=True)
    )
    rows = (await session.scalars(statement)).all()
    lease_end = now + timedelta(seconds=lease_seconds)
    claimed = []
    for row in rows:
        row.available_at = lease_end
        row.attempts += 1
        claimed.append(Claimed(row.id, row.job_type, dict(row.payload), row.run_key, row.attempts))
    await session.flush()
    return claimed


async def mark_published(session: AsyncSession, ids: Sequence[uuid.UUID]) -> None:
    if ids:
        await session.execute(
            update(OutboxEntry).where(OutboxEntry.id.in_(ids)).values(published_at=utcnow())
        )


async def postpone(
    session: AsyncSession, ids: Sequence[uuid.UUID], *, seconds: float, error: str
) -> None:
    """Offer rows again after `seconds` (a failed publish, or an in-process retry)."""
    if ids:
        later = utcnow() + timedelta(seconds=seconds)
        await session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.id.in_(ids))
            .values(available_at=later, last_error=error[:2000])
        )


async def backlog(session: AsyncSession) -> tuple[int, float, int]:
    """(rows not handed on, age in seconds of the oldest, rows due now)."""
    now = utcnow()
    waiting = select(func.count(), func.min(OutboxEntry.created_at)).where(
        OutboxEntry.published_at.is_(None)
    )
    count, oldest = (await session.execute(waiting)).one()
    due = await session.scalar(_due(now).with_only_columns(func.count()))
    age = (now - oldest).total_seconds() if oldest is not None else 0.0
    return int(count), max(age, 0.0), int(due or 0)


async def purge_published(session: AsyncSession, *, older_than: datetime) -> int:
    result: Any = await session.execute(
        delete(OutboxEntry).where(
            OutboxEntry.published_at.is_not(None), OutboxEntry.published_at < older_than
        )
    )
    return int(result.rowcount or 0)
