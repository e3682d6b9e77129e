"""All SQL about accounts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from primetrade.kit.pagination import SortKey, load_datetime
from primetrade.users.models import Role, User

NEWEST_FIRST = SortKey("created_at", User.created_at, descending=True, load=load_datetime)  # type: ignore[arg-type]


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        return await self.session.scalar(select(User).where(User.email == email))

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user

    async def delete(self, user: User) -> None:
        await self.session.execute(delete(User).where(User.id == user.id))

    async def lock_active_admins(self) -> Sequence[uuid.UUID]:
        """Ids of active admins, row-locked (PostgreSQL) so two demotions cannot race."""
        statement = (
            select(User.id)
            .where(User.role == Role.admin, User.is_active.is_(True))
            .with_for_update()
        )
        return (await self.session.scalars(statement)).all()

    async def count_active_admins(self) -> int:
        statement = select(func.count()).where(User.role == Role.admin, User.is_active.is_(True))
        return int(await self.session.scalar(statement) or 0)

    def search(self, q: str | None, role: Role | None, is_active: bool | None) -> Select[Any]:
        statement = select(User)
        if q:
            pattern = f"%{_escape_like(q.strip().lower())}%"
            statement = statement.where(
                or_(
                    User.email.like(pattern, escape="\\"),
                    func.lower(User.full_name).like(pattern, escape="\\"),
                )
            )
        if role is not None:
            statement = statement.where(User.role == role)
        if is_active is not None:
            statement = statement.where(User.is_active.is_(is_active))
        return statement

    async def page(
        self, statement: Select[Any], *, after: tuple[object, uuid.UUID] | None, limit: int
    ) -> Sequence[Any]:
        if after is not None:
            statement = statement.where(NEWEST_FIRST.after(User.id, *after))  # type: ignore[arg-type]
        statement = statement.order_by(*NEWEST_FIRST.order_by(User.id)).limit(limit)  # type: ignore[arg-type]
        return (await self.session.scalars(statement)).all()

    async def count(self, statement: Select[Any]) -> int:
        total = await self.session.scalar(select(func.count()).select_from(statement.subquery()))
        return int(total or 0)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
