"""Helpers for the account mail and notification tests: apps with a real SMTP server."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from email.message import EmailMessage

from fastapi import FastAPI
from sqlalchemy import func, select

from primetrade.jobs.models import OutboxEntry
from primetrade.kit.db import session_scope
from tests.jobsupport import Mailbox, eventually

TOKEN = re.compile(r"token=([A-Za-z0-9_-]+)")


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def html_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    return str(body.get_content())


def token_in(message: EmailMessage) -> str:
    found = TOKEN.search(text_of(message))
    assert found is not None, text_of(message)
    return found.group(1)


def mail_to(mailbox: Mailbox, address: str) -> list[EmailMessage]:
    return [message for message in mailbox.messages if message["To"] == address]


async def settled(app: FastAPI) -> None:
    """Wait until every job written so far (and every job those wrote) has run."""

    async def nothing_waits() -> bool:
        async with session_scope(app.state.runtime.sessions) as session:
            waiting = select(func.count()).where(OutboxEntry.published_at.is_(None))
            return int(await session.scalar(waiting) or 0) == 0

    await eventually(nothing_waits, "every job to run")


def received(mailbox: Mailbox, address: str, count: int = 1) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(mail_to(mailbox, address)) >= count

    return check
