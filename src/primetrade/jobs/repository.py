"""All SQL about job runs and dead jobs (the outbox keeps its own, in outbox.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from primetrade.jobs.models import DeadJob, JobRun
from primetrade.kit.db import upsert, utcnow
from primetrade.kit.pagination import SortKey, load_datetime

NEWEST_FIRST = SortKey("failed_at", DeadJob.failed_at, descending=True, load=load_datetime)  # type: ignore[arg-type]


class DeadJobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, dead_id: uuid.UUID, *, lock: bool = False) -> DeadJob | None:
        statement = select(DeadJob).where(DeadJob.id == dead_id)
        if lock:
            statement = statement.with_for_update()
        return await self.session.scalar(statement)

    def search(self, job_type: str | None, retried: bool | None) -> Select[Any]:
        statement = select(DeadJob)
        if job_type is not None:
            statement = statement.where(DeadJob.job_type == job_type)
        if retried is not None:
            column = DeadJob.retried_at
            statement = statement.where(column.is_not(None) if retried else column.is_(None))
        return statement

    async def page(
        self, statement: Select[Any], *, after: tuple[object, uuid.UUID] | None, limit: int
    ) -> Sequence[DeadJob]:
        if after is not None:
            statement = statement.where(NEWEST_FIRST.after(DeadJob.id, *after))  # type: ignore[arg-type]
        statement = statement.order_by(*NEWEST_FIRST.order_by(DeadJob.id)).limit(limit)  # type: ignore[arg-type]
        return (await self.session.scalars(statement)).all()

    async def count(self, statement: Select[Any]) -> int:
        total = await self.session.scalar(select(func.count()).select_from(statement.subquery()))
        return int(total or 0)

    async def count_waiting(self) -> int:
        statement = select(func.count()).select_from(DeadJob).where(DeadJob.retried_at.is_(None))
        return int(await self.session.scalar(statement) or 0)

    def record(
        self, job_type: str, payload: dict[str, Any], run_key: str, error: str, attempts: int
    ) -> None:
        """Keep a job that ran out of tries, for an admin to see and send again."""
        self.session.add(
            DeadJob(
                job_type=job_type,
                payload=payload,
                run_key=run_key,
                error=error,
                attempts=attempts,
                failed_at=utcnow(),
            )
        )


class JobRunRepository:
    """One row per job run key: its attempts, and whether it finished (done or dead)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def begin(self, run_key: str, job_type: str) -> int | None:
        """Count one more attempt; None when the run already finished."""
        row = {"key": run_key, "job_type": job_type, "attempts": 1, "status": "running"}
        statement = upsert(self.session, JobRun).values(**row, started_at=utcnow())
        attempts = await self.session.scalar(
            statement.on_conflict_do_update(
                index_elements=[JobRun.key],
                set_={"attempts": JobRun.attempts + 1},
                where=JobRun.finished_at.is_(None),
            ).returning(JobRun.attempts)
        )
        return None if attempts is None else int(attempts)

    async def forget(self, run_key: str) -> None:
        """Drop a run's record, so its next delivery starts again from attempt one."""
        await self.session.execute(delete(JobRun).where(JobRun.key == run_key))

    async def finish(self, run_key: str, status: str) -> None:
        await self.session.execute(
            update(JobRun).where(JobRun.key == run_key).values(status=status, finished_at=utcnow())
        )

    async def purge_finished(self, before: datetime) -> int:
        """Delete runs that finished before `before`; how many went."""
        result: Any = await self.session.execute(
            delete(JobRun).where(JobRun.finished_at.is_not(None), JobRun.finished_at < before)
        )
        return int(result.rowcount or 0)
