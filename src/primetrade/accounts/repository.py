"""All SQL about account tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from primetrade.accounts.models import AccountToken, TokenPurpose


class AccountTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: AccountToken) -> AccountToken:
        self.session.add(token)
        await self.session.flush()
        return token

    async def get(self, token_id: uuid.UUID) -> AccountToken | None:
        return await self.session.get(AccountToken, token_id)

    async def consume(
        self, purpose: TokenPurpose, token_hash: str, now: datetime
    ) -> uuid.UUID | None:
        """Mark a live token used and return its user; None when there is no such token.

        One conditional UPDATE: of two requests racing with the same link, only one wins.
        """
        statement = (
            update(AccountToken)
            .where(
                AccountToken.token_hash == token_hash,
                AccountToken.purpose == purpose,
                AccountToken.used_at.is_(None),
                AccountToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(AccountToken.user_id)
        )
        return await self.session.scalar(statement)

    async def retire(self, user_id: uuid.UUID, purpose: TokenPurpose, now: datetime) -> None:
        """Close every open token of a kind: a used link makes its older siblings useless."""
        await self.session.execute(
            update(AccountToken)
            .where(
                AccountToken.user_id == user_id,
                AccountToken.purpose == purpose,
                AccountToken.used_at.is_(None),
            )
            .values(used_at=now)
        )
