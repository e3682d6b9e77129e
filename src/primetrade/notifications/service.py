"""Notification rules: preferences, and which digests and reminders are due."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from primetrade.kit.db import utcnow
from primetrade.mail import send_email
from primetrade.notifications.models import NotificationSettings
from primetrade.notifications.repository import NotificationRepository
from primetrade.notifications.schemas import NotificationSettingsRead, NotificationSettingsUpdate
from primetrade.settings import Settings
from primetrade.tasks.models import Task
from primetrade.users.models import User

# A digest lists this many tasks at most and says how many more there are.
DIGEST_MAX_TASKS = 50
DEFAULTS = NotificationSettingsRead(daily_digest=True, due_reminders=True, weekly_report=True)


async def get(session: AsyncSession, user_id: uuid.UUID) -> NotificationSettingsRead:
    """A user's notification settings (the defaults until they change one)."""
    stored = await NotificationRepository(session).get(user_id)
    return DEFAULTS if stored is None else NotificationSettingsRead.model_validate(stored)


async def update(
    session: AsyncSession, user_id: uuid.UUID, changes: NotificationSettingsUpdate
) -> NotificationSettingsRead:
    """Change some notification settings."""
    repo = NotificationRepository(session)
    stored = await repo.get(user_id) or await repo.add(
        NotificationSettings(user_id=user_id, **DEFAULTS.model_dump())
    )
    for field, value in changes.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(stored, field, value)
    stored.updated_at = utcnow()
    await session.flush()
    return NotificationSettingsRead.model_validate(stored)


async def enqueue_digests(session: AsyncSession, settings: Settings) -> int:
    """One digest email per user with open tasks due today (UTC) or overdue; how many."""
    now = utcnow()
    today = now.date()
    end_of_day = datetime.combine(today + timedelta(days=1), time(), tzinfo=now.tzinfo)
    rows = await NotificationRepository(session).digest_rows(
        before=end_of_day, verified_only=settings.email_verification_required
    )
    start_of_day = end_of_day - timedelta(days=1)
    sent = 0
    for _owner, pairs in groupby(rows, key=lambda row: row[0].id):
        items = list(pairs)
        user: User = items[0][0]
        tasks: list[Task] = [task for _, task in items]
        context = _digest_context(user, tasks, start_of_day, today.isoformat())
        # One key per user and day: a second run that day (or a retried one) sends nothing.
        key = f"digest:{user.id}:{today.isoformat()}"
        await send_email(
            session,
            to=user.email,
            template="daily_digest",
            context=context,
            user_id=user.id,
            key=key,
        )
        sent += 1
    return sent


def _digest_context(
    user: User, tasks: Sequence[Task], start_of_day: datetime, day: str
) -> dict[str, Any]:
    shown = tasks[:DIGEST_MAX_TASKS]
    overdue = [_task_line(task) for task in shown if _due(task) < start_of_day]
    due_today = [_task_line(task) for task in shown if _due(task) >= start_of_day]
    return {
        "name": user.full_name,
        "day": day,
        "overdue": overdue,
        "due_today": due_today,
        "more": len(tasks) - len(shown),
    }


async def enqueue_reminders(session: AsyncSession, settings: Settings) -> int:
    """A reminder for each open task due within REMINDER_LEAD_MINUTES; how many were new."""
    now = utcnow()
    rows = await NotificationRepository(session).reminder_rows(
        after=now,
        until=now + timedelta(minutes=settings.reminder_lead_minutes),
        verified_only=settings.email_verification_required,
    )
    sent = 0
    for user, task in rows:
        # Keyed by the task and its due time: each run finds the task again and is dropped,
        # while a changed due time is a new key, so the reminder is armed again.
        key = f"reminder:{task.id}:{int(_due(task).timestamp())}"
        context = {"name": user.full_name, **_task_line(task)}
        entry = await send_email(
            session,
            to=user.email,
            template="due_reminder",
            context=context,
            user_id=user.id,
            key=key,
        )
        sent += entry is not None
    return sent


def _due(task: Task) -> datetime:
    assert task.due_at is not None  # the queries select dated tasks only
    return task.due_at


def _task_line(task: Task) -> dict[str, Any]:
    return {
        "title": task.title,
        "due": _due(task).strftime("%Y-%m-%d %H:%M UTC"),
        "priority": str(task.priority),
        "task_id": str(task.id),
    }
