"""The periodic archiving of tasks completed long ago."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from primetrade.jobs import JobContext, job
from primetrade.kit.db import session_scope, utcnow
from primetrade.kit.logging import get_logger
from primetrade.tasks import service

log = get_logger(__name__)
# Rows archived per transaction: short transactions keep row locks and the SQLite write lock
# brief while a large backlog is worked off.
ARCHIVE_BATCH = 500


@job("tasks.archive")
async def archive_completed(ctx: JobContext, _payload: dict[str, Any]) -> None:
    """Archive every task completed more than ARCHIVE_AFTER_DAYS ago, a batch at a time."""
    cutoff = utcnow() - timedelta(days=ctx.env.settings.archive_after_days)
    total = 0
    while True:
        async with session_scope(ctx.env.sessions) as session:
            archived = await service.archive_completed(session, cutoff, limit=ARCHIVE_BATCH)
        total += archived
        if archived < ARCHIVE_BATCH:
            break
    log.info("tasks_archived", archived=total, completed_before=cutoff.isoformat())
