"""Email: templates, the backends (a real SMTP server on loopback, .eml files), the idempotent
`mail.send` job and the hourly caps."""

from __future__ import annotations

import email
import email.policy
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
from primetrade.mail import send_email
from primetrade.mail.backends import FileMailer, SmtpMailer, build_mailer
from primetrade.mail.models import SentMail
from primetrade.mail.render import render
from tests.conftest import ENGINES, make_settings
from tests.jobsupport import app_builder, eventually, private_database, smtp_server


@pytest.fixture(scope="module", params=ENGINES)
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
