"""The `accounts.send_link` job: a verification or password reset email, when one is due."""

from __future__ import annotations

import uuid
from typing import Any

from primetrade.accounts import service
from primetrade.accounts.schemas import LinkJob
from primetrade.jobs.registry import JobContext, job
from primetrade.kit.db import session_scope
from primetrade.mail.jobs import send_mail

_TOKEN_IDS = uuid.UUID("6c0f3f4e-5a55-4f4b-9a52-1f0f5b1b2d11")


@job(service.LINK_JOB)
async def send_link(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Make the token and send its link (the send itself is `mail.send`'s, under this key)."""
    request = LinkJob.model_validate(payload)
    # Derived from the run key: a retry after the token was committed finds and reuses it.
    token_id = uuid.uuid5(_TOKEN_IDS, ctx.run_key)
    async with session_scope(ctx.env.sessions) as session:
        mail = await service.prepare_link(session, ctx.env.settings, request, token_id)
    if mail is not None:
        # Sent from here rather than through a second job: the link's secret is derived
        # again from the token id here, and never written to the outbox or the queue.
        await send_mail(ctx, mail)
