"""Housekeeping jobs of the infrastructure itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from primetrade.jobs.outbox import purge_published
from primetrade.jobs.registry import JobContext, job
from primetrade.jobs.repository import JobRunRepository
from primetrade.kit import idempotency
from primetrade.kit.db import session_scope, utcnow
from primetrade.kit.logging import get_logger

log = get_logger(__name__)


@job("outbox.purge")
async def purge_outbox(ctx: JobContext, _payload: dict[str, Any]) -> None:
    """Delete published outbox rows and finished runs older than JOB_RETENTION_SECONDS."""
    cutoff = utcnow() - timedelta(seconds=ctx.env.settings.job_retention_seconds)
    # Two transactions, one table each: a purge never holds locks on both at once.
    async with session_scope(ctx.env.sessions) as session:
        rows = await purge_published(session, older_than=cutoff)
    async with session_scope(ctx.env.sessions) as session:
        runs = await JobRunRepository(session).purge_finished(before=cutoff)
    log.info("outbox_purged", outbox_rows=rows, job_runs=runs)


@job("idempotency.purge")
async def purge_idempotency_keys(ctx: JobContext, _payload: dict[str, Any]) -> None:
    """Delete Idempotency-Key answers past their lifetime."""
    async with session_scope(ctx.env.sessions) as session:
        removed = await idempotency.purge_expired(session)
    log.info("idempotency_keys_purged", removed=removed)
