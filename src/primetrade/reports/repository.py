"""The SQL of the weekly report: one aggregate over one owner's tasks; active users."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from primetrade.tasks.models import Task, TaskPriority, TaskStatus
from primetrade.users.models import User


def _count_if(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def weekly_counts(
    session: AsyncSession, owner_id: uuid.UUID, since: datetime, now: datetime
) -> dict[str, int]:
    live = Task.archived_at.is_(None)
    open_live = and_(live, Task.status != TaskStatus.done)
    columns: dict[str, Any] = {
        "created": _count_if(Task.created_at >= since),
        "completed": _count_if(Task.completed_at >= since),
        "overdue": _count_if(and_(open_live, Task.due_at.is_not(None), Task.due_at < now)),
    }
    columns |= {f"status:{s.value}": _count_if(and_(live, Task.status == s)) for s in TaskStatus}
    columns |= {
        f"priority:{p.value}": _count_if(and_(open_live, Task.priority == p)) for p in TaskPriority
    }
    statement = select(*(c.label(f"c{i}") for i, c in enumerate(columns.values())))
    row = (await session.execute(statement.where(Task.owner_id == owner_id))).one()
    return {name: int(value) for name, value in zip(columns, row, strict=True)}


async def active_users(
    session: AsyncSession, *, after: uuid.UUID | None, limit: int
) -> Sequence[User]:
    """Active accounts in id order, `limit` after `after` (keyset)."""
    statement = select(User).where(User.is_active.is_(True)).order_by(User.id).limit(limit)
    if after is not None:
        statement = statement.where(User.id > after)
    return (await session.scalars(statement)).all()
