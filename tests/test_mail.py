"""Email: templates, the backends (a real SMTP server on loopback, .eml files and the log), the
idempotent `mail.send` job, the hourly caps, and a real worker killed (SIGKILL) mid-send."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import os
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import delete, select

from primetrade.jobs.models import JobRun, OutboxEntry
from primetrade.jobs.runner import JobMessage, Outcome, execute
from primetrade.kit.db import session_scope
from primetrade.kit.logging import configure_logging
from primetrade.mail import send_email
from primetrade.mail.backends import LOGGED_TEXT_CHARS, FileMailer, SmtpMailer, build_mailer
from primetrade.mail.models import SentMail
from primetrade.mail.render import render
from tests.conftest import DATABASE_LEGS, make_settings
from tests.jobsupport import (
    RABBITMQ_URL,
    Mailbox,
    app_builder,
    eventually,
    private_database,
    rabbitmq_queue,
    smtp_server,
    start_worker,
    worker_process,
)
from tests.pgserver import free_port


@pytest.fixture(scope="module", params=DATABASE_LEGS)
def mail_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    yield from private_database(request, tmp_path_factory)


@pytest.fixture
async def apps(mail_db: str) -> AsyncIterator[Callable[..., Awaitable[FastAPI]]]:
    async with app_builder(mail_db) as build:
        yield build


def has(items: list[Any], length: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(items) >= length

    return check


async def welcome(
    app: FastAPI, to: str, *, user_id: uuid.UUID | None = None, key: str | None = None
) -> uuid.UUID | None:
    async with session_scope(app.state.runtime.sessions) as session:
        return await send_email(
            session,
            to=to,
            template="welcome",
            context={"name": "Ada <Admin>", "email": to},
            user_id=user_id,
            key=key,
        )


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    return str(text.get_content()), str(html.get_content())


async def test_the_welcome_email_reaches_a_real_smtp_server(apps: Any) -> None:
    with smtp_server() as (mail_url, mailbox):
        app = await apps(mail_url=mail_url, public_url="https://tasks.example.com")
        await welcome(app, "ada@example.com", key="welcome:ada")
        await eventually(has(mailbox.messages, 1), "the welcome email")
    message = mailbox.messages[0]
    assert mailbox.recipients == [["ada@example.com"]]
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Welcome to PrimeTrade Tasks, Ada <Admin>"
    assert message["From"] == app.state.runtime.settings.mail_from
    text, html = parts(message)
    assert "Hello Ada <Admin>," in text  # plain text is not escaped
    assert "Ada &lt;Admin&gt;" in html  # HTML is
    assert "https://tasks.example.com" in text
    assert 'href="https://tasks.example.com"' in html


async def test_a_redelivered_send_does_not_mail_twice(apps: Any) -> None:
    with smtp_server() as (mail_url, mailbox):
        app = await apps(mail_url=mail_url)
        entry = await welcome(app, "bob@example.com", key="welcome:bob")
        await eventually(lambda: _runs_done(app, 1), "the first email's run")
        env = app.state.background.env
        async with session_scope(env.sessions) as session:
            row = await session.get(OutboxEntry, entry)
            assert row is not None
            message = JobMessage(str(row.id), row.job_type, dict(row.payload), row.run_key)
        # The broker delivers the same message again: the finished run is skipped.
        assert await execute(env, message) is Outcome.duplicate
        # Even had the run's end not been recorded (a crash right after the send), the log
        # of sent mail stops a second send.
        async with session_scope(env.sessions) as session:
            await session.execute(delete(JobRun))
        assert await execute(env, message) is Outcome.done
    assert len(mailbox.messages) == 1


async def test_the_caps_skip_sends_beyond_them(apps: Any) -> None:
    with smtp_server() as (mail_url, mailbox):
        app = await apps(mail_url=mail_url, mail_user_hourly_cap=1, mail_global_hourly_cap=2)
        carol, dave = uuid.uuid4(), uuid.uuid4()
        # Each step waits for the sends before it to be recorded, not just received: the
        # caps count recorded sends, and sends in flight at once may each see room for one.
        await welcome(app, "carol@example.com", user_id=carol, key="1")
        await eventually(lambda: _runs_done(app, 1), "carol's first email")
        await welcome(app, "carol@example.com", user_id=carol, key="2")  # over her cap
        await welcome(app, "dave@example.com", user_id=dave, key="3")
        await eventually(lambda: _runs_done(app, 3), "dave's email")
        await welcome(app, "erin@example.com", key="4")  # over the global cap
        await eventually(lambda: _runs_done(app, 4), "every send to finish")
    assert [to for [to] in mailbox.recipients] == ["carol@example.com", "dave@example.com"]
    async with session_scope(app.state.runtime.sessions) as session:
        sent = set((await session.scalars(select(SentMail.key))).all())
    assert sent == {"1", "3"}


async def _runs_done(app: FastAPI, expected: int) -> bool:
    async with session_scope(app.state.runtime.sessions) as session:
        done = (await session.scalars(select(JobRun.status))).all()
    return list(done).count("done") == expected


async def test_the_file_backend_writes_an_eml_a_person_can_open(apps: Any, tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    app = await apps(mail_url=f"file://{folder}")
    await welcome(app, "fay@example.com")

    async def written() -> bool:
        return any(folder.glob("*.eml")) if folder.exists() else False

    await eventually(written, "the .eml file")
    [path] = list(folder.glob("*.eml"))
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["To"] == "fay@example.com"
    assert "fay@example.com" in parts(message)[0]


class _Events(logging.Handler):
    """Keeps the event dict of every structlog line that reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict):
            self.events.append(record.msg)


@pytest.fixture
def mail_log() -> Iterator[list[dict[str, Any]]]:
    """Every event the mail backends log at INFO and above (tests log WARNING otherwise)."""
    # As every app does at start: structlog hands its events to the standard library.
    configure_logging(json=False, level="WARNING")
    logger = logging.getLogger("primetrade.mail.backends")
    handler, level = _Events(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.events
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_the_file_backend_logs_the_text_a_person_reads(
    apps: Any, tmp_path: Path, mail_log: list[dict[str, Any]]
) -> None:
    app = await apps(mail_url=f"file://{tmp_path / 'mail'}", public_url="https://t.example.com")
    await welcome(app, "gus@example.com")
    await eventually(has(mail_log, 1), "the logged email")
    [logged] = mail_log
    assert (logged["event"], logged["to"]) == ("mail_sent", "gus@example.com")
    assert logged["subject"] == "Welcome to PrimeTrade Tasks, Ada <Admin>"
    assert "Hello Ada <Admin>," in logged["text"]
    assert "https://t.example.com" in logged["text"]
    assert Path(logged["file"]).parent == tmp_path / "mail"


async def test_the_logged_text_is_bounded_and_the_file_keeps_it_all(
    tmp_path: Path, mail_log: list[dict[str, Any]]
) -> None:
    message = EmailMessage()
    message["To"], message["Subject"] = "long@example.com", "Long"
    message.set_content("All work and no play. " * 1000)
    message.add_alternative("<p>All work and no play.</p>", subtype="html")
    await FileMailer(tmp_path).send(message)
    [logged] = mail_log
    raw = await asyncio.to_thread(Path(logged["file"]).read_bytes)
    written = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(written, EmailMessage)
    full = parts(written)[0]
    assert len(full) > LOGGED_TEXT_CHARS
    rest = len(full) - LOGGED_TEXT_CHARS
    assert logged["text"] == f"{full[:LOGGED_TEXT_CHARS]}\n[{rest} more characters in the file]"


# --- A real worker, killed in the middle of a send ------------------------------------------


@pytest.fixture
def rabbit_queue() -> Iterator[str]:
    yield from rabbitmq_queue()


async def _run(app: FastAPI) -> JobRun | None:
    async with session_scope(app.state.runtime.sessions) as session:
        return await session.scalar(select(JobRun))


@pytest.mark.slow
async def test_a_worker_killed_mid_send_is_redelivered_and_mails_once(
    apps: Any, mail_db: str, rabbit_queue: str, tmp_path: Path
) -> None:
    # The server holds the send at RCPT TO, before any message is accepted: the kill lands
    # inside the job, and whatever happens to the dead session, no message came of it.
    with smtp_server(held=True) as (mail_url, mailbox):
        settings = {
            "broker_url": RABBITMQ_URL,
            "broker_queue": rabbit_queue,
            "mail_url": mail_url,
            "mail_timeout_seconds": 300,  # the held send must not time out on its own
        }
        app = await apps(**settings)
        await welcome(app, "kim@example.com", key="welcome:kim")
        first, log = start_worker(tmp_path, free_port(), database_url=mail_db, **settings)
        try:
            await eventually(lambda: _held(mailbox), "the send in flight")
        finally:
            os.killpg(first.pid, signal.SIGKILL)  # Dramatiq's main process and its worker
            await asyncio.to_thread(first.wait, 30)
        killed = await _run(app)
        assert killed is not None, log.read_text()
        assert (killed.status, killed.attempts) == ("running", 1)
        mailbox.gate.set()  # the server answers again; RabbitMQ has the message back
        async with worker_process(tmp_path, database_url=mail_db, **settings):
            await eventually(lambda: _runs_done(app, 1), "the redelivered send")
    assert mailbox.recipients == [["kim@example.com"]]
    run = await _run(app)
    assert run is not None
    assert run.attempts == 2  # the killed delivery and the redelivery, which sent once
    async with session_scope(app.state.runtime.sessions) as session:
        assert (await session.scalars(select(SentMail.key))).all() == ["welcome:kim"]


async def _held(mailbox: Mailbox) -> bool:
    return mailbox.held > 0


# --- Without a database ----------------------------------------------------------------------


def settings_with(mail_url: str) -> Any:
    return make_settings("sqlite+aiosqlite:///:memory:", mail_url=mail_url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", ("mail.example.com", 25, None, None, False, None)),
        (
            "smtp://us%40er:p%3Ass@mail.example.com:587?starttls=true",
            ("mail.example.com", 587, "us@er", "p:ss", False, True),
        ),
        ("smtp://127.0.0.1:1025?starttls=false", ("127.0.0.1", 1025, None, None, False, False)),
        ("smtps://u:p@mail.example.com", ("mail.example.com", 465, "u", "p", True, None)),
    ],
)
def test_smtp_urls(url: str, expected: tuple[Any, ...]) -> None:
    mailer = build_mailer(settings_with(url))
    assert isinstance(mailer, SmtpMailer)
    fields = (mailer.hostname, mailer.port, mailer.username, mailer.password)
    assert (*fields, mailer.use_tls, mailer.start_tls) == expected


def test_other_mail_urls() -> None:
    assert build_mailer(settings_with("file://./data/mail")) == FileMailer(Path("./data/mail"))
    with pytest.raises(ValueError, match="is not smtp"):
        build_mailer(settings_with("pigeon://coop"))
    with pytest.raises(ValueError, match="not true or false"):
        build_mailer(settings_with("smtp://host?starttls=maybe"))


def test_the_message_id_follows_the_key() -> None:
    def message_id(key: str) -> str:
        sent = render(
            "welcome",
            {"name": None, "email": "a@example.com", "app_url": "http://x"},
            sender="Tasks <no-reply@tasks.example.com>",
            to="a@example.com",
            key=key,
        )
        return str(sent["Message-ID"])

    assert message_id("k1") == message_id("k1") != message_id("k2")
    assert message_id("k1").endswith("@tasks.example.com>")
