"""One-time account tokens (email verification, password reset), kept only as hashes."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from primetrade.kit.db import Base, UTCDateTime, new_id, utcnow


class TokenPurpose(StrEnum):
    verify_email = "verify_email"
    password_reset = "password_reset"  # noqa: S105 - a purpose, not a secret


class AccountToken(Base):
    """A link sent by email: usable once (`used_at`), until `expires_at`, for one purpose."""

    __tablename__ = "account_tokens"
    __table_args__ = (Index(None, "user_id", "purpose"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    purpose: Mapped[TokenPurpose] = mapped_column(
        Enum(TokenPurpose, native_enum=False, length=32, validate_strings=True)
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
