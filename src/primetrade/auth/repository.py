"""All SQL about sign-in sessions and refresh tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from primetrade.auth.models import AuthSession, RefreshToken
from primetrade.kit.db import utcnow
from primetrade.users.models import User

# Built once: the statement, and the cache key SQLAlchemy derives from it, are reused by every
# authenticated request instead of being assembled again each time.
_LIVE_SESSION = (
    select(User, AuthSession.expires_at)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(
        User.id == bindparam("user_id"),
        User.is_active.is_(True),
        AuthSession.id == bindparam("session_id"),
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > bindparam("now"),
    )
)


class AuthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_session(self, auth_session: AuthSession, token_hash: str) -> None:
        self.session.add(auth_session)
        await self.session.flush()
        await self.add_token(auth_session.id, token_hash)

    async def add_token(self, session_id: uuid.UUID, token_hash: str) -> None:
        self.session.add(RefreshToken(token_hash=token_hash, session_id=session_id))
        await self.session.flush()

    async def find_token(self, token_hash: str) -> tuple[RefreshToken, AuthSession] | None:
        statement = (
            select(RefreshToken, AuthSession)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .where(RefreshToken.token_hash == token_hash)
            .with_for_update(of=RefreshToken)
        )
        row = (await self.session.execute(statement)).first()
        return None if row is None else (row[0], row[1])

    async def mark_used(self, token_hash: str) -> bool:
        """Mark a token rotated; False when another request rotated it first."""
        result = await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == token_hash, RefreshToken.used_at.is_(None))
            .values(used_at=utcnow())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def live_session(
        self, session_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[User, datetime] | None:
        """The active user behind a live (unrevoked, unexpired) session and its end, or None.

        This runs on every authenticated request that is not answered from the cache, so the
        user and session checks share one query: the single place the auth domain reads the
        users table, for one round trip.
        """
        params = {"user_id": user_id, "session_id": session_id, "now": utcnow()}
        row = (await self.session.execute(_LIVE_SESSION, params)).first()
        return None if row is None else (row[0], row[1])

    async def revoke_session(self, session_id: uuid.UUID, when: datetime) -> None:
        await self.session.execute(
            update(AuthSession)
            .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=when)
        )

    async def revoke_user_sessions(
        self, user_id: uuid.UUID, when: datetime, *, keep: uuid.UUID | None = None
    ) -> None:
        statement = update(AuthSession).where(
            AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
        )
        if keep is not None:
            statement = statement.where(AuthSession.id != keep)
        await self.session.execute(statement.values(revoked_at=when))

    async def touch(self, auth_session: AuthSession, when: datetime) -> None:
        auth_session.last_used_at = when
        await self.session.flush()
