"""Asking for an email: a `mail.send` job in the caller's transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from primetrade.jobs.outbox import enqueue
from primetrade.mail.schemas import MailJob


async def send_email(
    session: AsyncSession,
    *,
    to: str,
    template: str,
    context: dict[str, Any] | None = None,
    user_id: uuid.UUID | None = None,
    key: str | None = None,
) -> uuid.UUID | None:
    """Send `template` to `to` once the transaction commits (never twice under one `key`).

    `user_id` is whose per-user hourly cap the message counts against.
    """
    job = MailJob(to=to, template=template, context=context or {}, user_id=user_id)
    return await enqueue(session, "mail.send", job.model_dump(mode="json"), key=key)
