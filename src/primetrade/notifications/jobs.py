"""The periodic notification jobs: the daily digest and due-date reminders."""

from __future__ import annotations

from typing import Any

from primetrade.jobs.registry import JobContext, job
from primetrade.kit.db import session_scope
from primetrade.kit.logging import get_logger
from primetrade.notifications import service

log = get_logger(__name__)


@job("notifications.digest")
async def send_digests(ctx: JobContext, _payload: dict[str, Any]) -> None:
    """Queue today's digest emails (each user's at most once a day)."""
    async with session_scope(ctx.env.sessions) as session:
        users = await service.enqueue_digests(session, ctx.env.settings)
    log.info("digests_enqueued", users=users)


@job("notifications.reminders")
async def send_reminders(ctx: JobContext, _payload: dict[str, Any]) -> None:
    """Queue reminders of tasks due soon (each task and due time at most once)."""
    async with session_scope(ctx.env.sessions) as session:
        reminders = await service.enqueue_reminders(session, ctx.env.settings)
    log.info("reminders_enqueued", reminders=reminders)
