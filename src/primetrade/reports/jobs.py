"""The weekly report email, sent once a week to every active user who had activity.

Users who turned `weekly_report` off in their notification settings get none.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

from primetrade.jobs import JobContext, job
from primetrade.jobs.scheduler import WEEK_SECONDS, WEEKLY_OFFSET
from primetrade.kit.db import session_scope, utcnow
from primetrade.kit.logging import get_logger
from primetrade.mail import send_email
from primetrade.notifications import service as notifications
from primetrade.reports import repository, service
from primetrade.users.models import User

log = get_logger(__name__)
USERS_PER_BATCH = 200
UTC_ZONE = ZoneInfo("UTC")


@job("reports.weekly")
async def send_weekly_reports(ctx: JobContext, _payload: dict[str, Any]) -> None:
    """Enqueue one report email per active user with activity, keyed by user and week.

    The key makes the job safe to run again (a redelivery, or a retry after a crash
    half-way): users already given their email this week are not given a second one.
    """
    # The scheduler's weekly slot: the same number for every run within one week.
    week = int((utcnow().timestamp() - WEEKLY_OFFSET) // WEEK_SECONDS)
    after = None
    sent = 0
    while True:
        async with session_scope(ctx.env.read_sessions) as session:
            users = list(await repository.active_users(session, after=after, limit=USERS_PER_BATCH))
        for user in users:
            sent += await _report_to(ctx, user, week)
        if len(users) < USERS_PER_BATCH:
            break
        after = users[-1].id
    log.info("weekly_reports_enqueued", week=week, emails=sent)


async def _report_to(ctx: JobContext, user: User, week: int) -> int:
    async with session_scope(ctx.env.sessions) as session:
        if not (await notifications.get(session, user.id)).weekly_report:
            return 0
        report = await service.weekly(session, user, UTC_ZONE)
        if not report.had_activity:
            return 0
        context = {
            "name": user.full_name or user.email,
            "report": report.model_dump(mode="json"),
            "period_start": report.period_start.astimezone(UTC).date().isoformat(),
            "period_end": report.period_end.astimezone(UTC).date().isoformat(),
        }
        queued = await send_email(
            session,
            to=user.email,
            template="weekly_report",
            context=context,
            user_id=user.id,
            key=f"weekly-report:{user.id}:{week}",
        )
    return 0 if queued is None else 1
