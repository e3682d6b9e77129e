"""The `mail.send` job: one message, sent at most once per key, within the hourly caps."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from primetrade.jobs import metrics
from primetrade.jobs.registry import JobContext, job
from primetrade.kit.db import session_scope, utcnow
from primetrade.kit.logging import get_logger
from primetrade.mail.render import render
from primetrade.mail.repository import SentMailRepository
from primetrade.mail.schemas import MailJob
from primetrade.settings import Settings

log = get_logger(__name__)
CAP_WINDOW = timedelta(hours=1)


@job("mail.send")
async def send_mail(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Render and send one email, unless it went out already or a cap is reached."""
    mail = MailJob.model_validate(payload)
    settings = ctx.env.settings
    async with session_scope(ctx.env.read_sessions) as session:
        sent = SentMailRepository(session)
        if await sent.was_sent(ctx.run_key):
            log.info("mail_already_sent", run_key=ctx.run_key)
            metrics.MAIL_SKIPPED.labels("already_sent").inc()
            return
        capped = await _cap_reached(sent, settings, mail.user_id)
    if capped is not None:
        # Skipped, not failed: retrying within the hour would only hit the cap again.
        log.warning("mail_capped", cap=capped, template=mail.template, user_id=mail.user_id)
        metrics.MAIL_SKIPPED.labels(capped).inc()
        return
    context = {"app_url": settings.public_url, **mail.context}
    message = render(
        mail.template, context, sender=settings.mail_from, to=str(mail.to), key=ctx.run_key
    )
    await ctx.env.mailer.send(message)
    # Recorded after the send: a crash in between sends again (at least once), never zero.
    # A delivery of the same job that overlapped this one may have recorded it first.
    async with session_scope(ctx.env.sessions) as session:
        await SentMailRepository(session).record(
            ctx.run_key, mail.user_id, str(mail.to), mail.template
        )
    metrics.MAIL_SENT.labels(mail.template).inc()


async def _cap_reached(
    sent: SentMailRepository, settings: Settings, user_id: uuid.UUID | None
) -> str | None:
    """Which hourly cap the next message would pass, if any.

    Counted from the log of sent mail. Concurrent sends can each see room for one more and
    pass a cap by a few messages; the caps bound volume, they are not exact quotas.
    """
    since = utcnow() - CAP_WINDOW
    if await sent.count_since(since) >= settings.mail_global_hourly_cap:
        return "global_cap"
    if user_id is None:
        return None
    mine = await sent.count_since(since, user_id)
    return "user_cap" if mine >= settings.mail_user_hourly_cap else None


@job("mail.purge")
async def purge_sent_mail(ctx: JobContext, _payload: dict[str, Any]) -> None:
    """Forget sent mail older than JOB_RETENTION_SECONDS (the caps look back one hour)."""
    retention = max(timedelta(seconds=ctx.env.settings.job_retention_seconds), CAP_WINDOW)
    async with session_scope(ctx.env.sessions) as session:
        removed = await SentMailRepository(session).purge_before(utcnow() - retention)
    log.info("sent_mail_purged", removed=removed)
