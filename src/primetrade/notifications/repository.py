"""All SQL about notification preferences and the tasks the notifications talk about."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from primetrade.notifications.models import NotificationSettings
from primetrade.tasks.models import Task, TaskStatus
from primetrade.users.models import User


class NotificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> NotificationSettings | None:
        return await self.session.get(NotificationSettings, user_id)

    async def add(self, preferences: NotificationSettings) -> NotificationSettings:
        self.session.add(preferences)
        await self.session.flush()
        return preferences

    async def digest_rows(
        self, *, before: datetime, verified_only: bool
    ) -> list[tuple[User, Task]]:
        """(user, task) of every open task due before `before`, for users who want a digest."""
        statement = _open_tasks_of_willing_users(NotificationSettings.daily_digest, verified_only)
        statement = statement.where(Task.due_at < before).order_by(Task.owner_id, Task.due_at)
        return await self._pairs(statement)

    async def reminder_rows(
        self, *, after: datetime, until: datetime, verified_only: bool
    ) -> list[tuple[User, Task]]:
        """(user, task) of every open task due in (after, until], for users who want reminders."""
        statement = _open_tasks_of_willing_users(NotificationSettings.due_reminders, verified_only)
        statement = statement.where(Task.due_at > after, Task.due_at <= until)
        return await self._pairs(statement.order_by(Task.due_at))

    async def _pairs(self, statement: Select[User, Task]) -> list[tuple[User, Task]]:
        return [(row[0], row[1]) for row in await self.session.execute(statement)]


def _open_tasks_of_willing_users(wants: Any, verified_only: bool) -> Select[User, Task]:
    statement = (
        select(User, Task)
        .join(Task, Task.owner_id == User.id)
        .outerjoin(NotificationSettings, NotificationSettings.user_id == User.id)
        .where(
            User.is_active.is_(True),
            Task.status != TaskStatus.done,
            # Archiving a task is putting it away: it stops asking for attention.
            Task.archived_at.is_(None),
            Task.due_at.is_not(None),
            # No preferences row: the defaults, which are on.
            NotificationSettings.user_id.is_(None) | wants.is_(True),
        )
    )
    if verified_only:
        statement = statement.where(User.email_verified_at.is_not(None))
    return statement
