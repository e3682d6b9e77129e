"""Dead jobs for admins: list them, send one again."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from primetrade.jobs import outbox
from primetrade.jobs.exceptions import AlreadyRetried, DeadJobNotFound
from primetrade.jobs.models import DeadJob
from primetrade.jobs.repository import NEWEST_FIRST, DeadJobRepository, JobRunRepository
from primetrade.jobs.schemas import DeadJobRead
from primetrade.kit.db import utcnow
from primetrade.kit.pagination import CursorCodec, Page

DEAD_JOBS_SCOPE = "dead_jobs:-failed_at"


async def search(
    session: AsyncSession,
    cursors: CursorCodec,
    *,
    job_type: str | None,
    retried: bool | None,
    limit: int,
    cursor: str | None,
    include_total: bool,
) -> Page[DeadJobRead]:
    """Dead jobs, most recent failure first, one page at a time."""
    repo = DeadJobRepository(session)
    statement = repo.search(job_type, retried)
    after = cursors.decode_for(cursor, NEWEST_FIRST, DEAD_JOBS_SCOPE)
    jobs = list(await repo.page(statement, after=after, limit=limit + 1))
    rows = [(job, NEWEST_FIRST.value_of(job)) for job in jobs]
    return Page[DeadJobRead](
        items=[DeadJobRead.model_validate(job) for job in jobs[:limit]],
        next_cursor=cursors.next_for(rows, DEAD_JOBS_SCOPE, limit),
        total=await repo.count(statement) if include_total else None,
    )


async def get(session: AsyncSession, dead_id: uuid.UUID) -> DeadJob:
    dead = await DeadJobRepository(session).get(dead_id)
    if dead is None:
        raise DeadJobNotFound()
    return dead


async def retry(session: AsyncSession, dead_id: uuid.UUID) -> DeadJob:
    """Send a dead job again, under its own run key, starting from its first attempt."""
    repo = DeadJobRepository(session)
    dead = await repo.get(dead_id, lock=True)
    if dead is None:
        raise DeadJobNotFound()
    if dead.retried_at is not None:
        raise AlreadyRetried("This dead job was already sent again.")
    await JobRunRepository(session).forget(dead.run_key)
    await outbox.enqueue_again(session, dead.job_type, dict(dead.payload), dead.run_key)
    dead.retried_at = utcnow()
    await session.flush()
    return dead
