"""The weekly report: what happened to a user's tasks in the last seven days, and where
they stand now. Archived tasks count in `created`/`completed` (they did happen in the
period) but not in the current standing, as in the stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from primetrade.kit.db import utcnow
from primetrade.reports import repository
from primetrade.reports.schemas import WeeklyReport
from primetrade.tasks.models import TaskPriority, TaskStatus
from primetrade.users.models import User

PERIOD_DAYS = 7


def period_start(now: datetime, tz: ZoneInfo) -> datetime:
    """Midnight in `tz` six days before today: seven calendar days, today included."""
    today = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    # Shown in UTC like every time of the API (the day boundaries are `tz`'s).
    return (today - timedelta(days=PERIOD_DAYS - 1)).astimezone(UTC)


async def weekly(session: AsyncSession, user: User, tz: ZoneInfo) -> WeeklyReport:
    """The user's report for the seven days up to now, days counted in `tz`."""
    now = utcnow()
    since = period_start(now, tz)
    counts = await repository.weekly_counts(session, user.id, since, now)
    return WeeklyReport(
        period_start=since,
        period_end=now,
        created=counts["created"],
        completed=counts["completed"],
        overdue=counts["overdue"],
        by_status={s: counts[f"status:{s.value}"] for s in TaskStatus},
        by_priority={p: counts[f"priority:{p.value}"] for p in TaskPriority},
    )
