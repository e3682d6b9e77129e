"""The log of sent mail: one row per message handed to the mail server."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from primetrade.kit.db import Base, UTCDateTime, utcnow


class SentMail(Base):
    """A sent message: what makes a send idempotent (its key) and what the hourly caps count."""

    __tablename__ = "mail_sends"
    __table_args__ = (Index(None, "sent_at"), Index(None, "user_id", "sent_at"))

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    recipient: Mapped[str] = mapped_column(String(320))
    template: Mapped[str] = mapped_column(String(100))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
