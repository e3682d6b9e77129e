"""All SQL about exports; reads are scoped to one owner."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from primetrade.exports.models import Export, ExportStatus


class ExportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @staticmethod
    def visible(owner_id: uuid.UUID) -> Select[Any]:
        return select(Export).where(Export.owner_id == owner_id)

    async def get_visible(self, owner_id: uuid.UUID, export_id: uuid.UUID) -> Export | None:
        export: Export | None = await self.session.scalar(
            self.visible(owner_id).where(Export.id == export_id)
        )
        return export

    async def get(self, export_id: uuid.UUID, *, for_update: bool = False) -> Export | None:
        """Any export by id (for the jobs, which act on behalf of its owner)."""
        statement = select(Export).where(Export.id == export_id)
        if for_update:
            statement = statement.with_for_update()
        export: Export | None = await self.session.scalar(statement)
        return export

    async def newest(self, owner_id: uuid.UUID, limit: int) -> Sequence[Export]:
        statement = (
            self.visible(owner_id).order_by(Export.created_at.desc(), Export.id.desc()).limit(limit)
        )
        return (await self.session.scalars(statement)).all()

    async def add(self, export: Export) -> Export:
        self.session.add(export)
        await self.session.flush()
        return export

    async def past_lifetime(self, now: datetime, limit: int) -> Sequence[Export]:
        statement = (
            select(Export)
            .where(Export.status == ExportStatus.ready, Export.expires_at <= now)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.scalars(statement)).all()
