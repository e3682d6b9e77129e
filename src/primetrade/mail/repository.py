"""All SQL about sent mail: the log that makes a send happen once and bounds the volume."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from primetrade.kit.db import upsert, utcnow
from primetrade.mail.models import SentMail


class SentMailRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def was_sent(self, key: str) -> bool:
        return await self.session.get(SentMail, key) is not None

    async def count_since(self, since: datetime, user_id: uuid.UUID | None = None) -> int:
        """Messages sent after `since`: to everyone, or to one user."""
        statement = select(func.count()).select_from(SentMail).where(SentMail.sent_at > since)
        if user_id is not None:
            statement = statement.where(SentMail.user_id == user_id)
        return int(await self.session.scalar(statement) or 0)

    async def record(
        self, key: str, user_id: uuid.UUID | None, recipient: str, template: str
    ) -> None:
        """Note a message as sent; a concurrent delivery that noted it first wins, quietly."""
        row = {"key": key, "user_id": user_id, "recipient": recipient, "template": template}
        statement = upsert(self.session, SentMail).values(**row, sent_at=utcnow())
        await self.session.execute(statement.on_conflict_do_nothing(index_elements=[SentMail.key]))

    async def purge_before(self, before: datetime) -> int:
        """Forget messages sent before `before`; how many went."""
        result: Any = await self.session.execute(delete(SentMail).where(SentMail.sent_at < before))
        return int(result.rowcount or 0)
