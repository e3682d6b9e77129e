"""The daily digest and due-date reminders, their opt-outs and the time-of-day schedule, with a
real SMTP server and in-process jobs, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from primetrade.jobs import enqueue
from primetrade.jobs.scheduler import DAY_SECONDS, daily
from primetrade.kit.db import session_scope, utcnow
from tests.conftest import DATABASE_LEGS, asgi_client
from tests.helpers import API, Account, Api
from tests.jobsupport import Mailbox, app_builder, private_database, smtp_server
from tests.mailsupport import mail_to, settled, text_of

NOTIFICATIONS = f"{API}/users/me/notifications"


@pytest.fixture(scope="module", params=DATABASE_LEGS)
def notify_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    yield from private_database(request, tmp_path_factory)


@pytest.fixture
async def world(notify_db: str) -> AsyncIterator[tuple[FastAPI, Api, Mailbox]]:
    with smtp_server() as (mail_url, mailbox):
        async with app_builder(notify_db) as build:
            app = await build(mail_url=mail_url)
            async with asgi_client(app) as client:
                yield app, Api(client), mailbox


async def run_job(app: FastAPI, job_type: str) -> None:
    """Run a job as the scheduler would (without a key: every run is a new job)."""
    async with session_scope(app.state.runtime.sessions) as session:
        await enqueue(session, job_type, {})
    await settled(app)


def at(moment: datetime) -> str:
    return moment.isoformat()


def digests(mailbox: Mailbox, who: Account) -> list[Any]:
    return [m for m in mail_to(mailbox, who.email) if m["Subject"].startswith("Your tasks")]


def reminders(mailbox: Mailbox, who: Account) -> list[Any]:
    return [m for m in mail_to(mailbox, who.email) if m["Subject"].startswith("Due soon")]


def start_of_today() -> datetime:
    return datetime.combine(utcnow().date(), time(), tzinfo=UTC)


async def opt_out(api: Api, who: Account, **changes: bool) -> dict[str, Any]:
    response = await api.client.patch(NOTIFICATIONS, json=changes, headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- Settings --------------------------------------------------------------------------------


async def test_settings_default_on_and_change_one_at_a_time(
    world: tuple[FastAPI, Api, Mailbox],
) -> None:
    _app, api, _mailbox = world
    ann = await api.account()
    first = await api.client.get(NOTIFICATIONS, headers=ann.headers)
    assert first.json() == {"daily_digest": True, "due_reminders": True, "weekly_report": True}
    assert await opt_out(api, ann, daily_digest=False) == {
        "daily_digest": False,
        "due_reminders": True,
        "weekly_report": True,
    }
    assert await opt_out(api, ann, due_reminders=False, weekly_report=False) == {
        "daily_digest": False,
        "due_reminders": False,
        "weekly_report": False,
    }
    for bad_body in ({"sms": True}, {"daily_digest": 0}, {"weekly_report": "no"}):
        bad = await api.client.patch(NOTIFICATIONS, json=bad_body, headers=ann.headers)
        assert bad.status_code == 422, bad_body


# --- Digest ----------------------------------------------------------------------------------


async def test_one_digest_a_day_with_overdue_and_due_today_tasks(
    world: tuple[FastAPI, Api, Mailbox],
) -> None:
    app, api, mailbox = world
    dora, quiet, opted = await api.account(), await api.account(), await api.account()
    today = start_of_today()
    await api.create_task(dora, title="Overdue report", due_at=at(today - timedelta(days=2)))
    await api.create_task(dora, title="Call the bank", due_at=at(today + timedelta(minutes=1)))
    await api.create_task(dora, title="Next week", due_at=at(today + timedelta(days=7)))
    await api.create_task(
        dora, title="Already done", due_at=at(today - timedelta(days=1)), status="done"
    )
    await api.create_task(quiet, title="Far away", due_at=at(today + timedelta(days=30)))
    await api.create_task(opted, title="Late too", due_at=at(today - timedelta(days=1)))
    await opt_out(api, opted, daily_digest=False)
    await run_job(app, "notifications.digest")
    await run_job(app, "notifications.digest")  # the same day again: nothing new
    [digest] = digests(mailbox, dora)
    text = text_of(digest)
    assert digest["Subject"].endswith("1 overdue, 1 due today")
    assert "Overdue report" in text
    assert "Call the bank" in text
    assert "Next week" not in text
    assert "Already done" not in text
    assert digests(mailbox, quiet) == []
    assert digests(mailbox, opted) == []


def test_a_daily_entry_fires_once_per_day_from_its_hour() -> None:
    entry = daily("digest", "notifications.digest", hour_utc=7)
    midnight = datetime(2026, 11, 24, tzinfo=UTC).timestamp()
    before, at_seven, evening = midnight + 6.9 * 3600, midnight + 7 * 3600, midnight + 23 * 3600
    assert entry.slot(before) == entry.slot(at_seven) - 1
    assert entry.slot(at_seven) == entry.slot(evening)
    assert entry.slot(at_seven + DAY_SECONDS) == entry.slot(at_seven) + 1
    assert entry.seconds_to_next(before) == pytest.approx(0.1 * 3600)


# --- Reminders -------------------------------------------------------------------------------


async def _due_in(api: Api, who: Account, task_id: str, minutes: int) -> None:
    due = at(utcnow() + timedelta(minutes=minutes))
    response = await api.client.patch(
        f"{API}/tasks/{task_id}", json={"due_at": due}, headers=who.headers
    )
    assert response.status_code == 200, response.text


async def test_reminders_once_per_due_time_rearmed_by_a_change_and_stopped_by_opt_out(
    world: tuple[FastAPI, Api, Mailbox],
) -> None:
    app, api, mailbox = world
    rick = await api.account()
    soon = await api.create_task(
        rick, title="Board meeting", due_at=at(utcnow() + timedelta(minutes=30))
    )
    await api.create_task(rick, title="Later", due_at=at(utcnow() + timedelta(hours=5)))
    await run_job(app, "notifications.reminders")
    await run_job(app, "notifications.reminders")
    [reminder] = reminders(mailbox, rick)
    assert reminder["Subject"] == "Due soon: Board meeting"
    await _due_in(api, rick, soon["id"], 45)  # a new due time arms a new reminder
    await run_job(app, "notifications.reminders")
    assert len(reminders(mailbox, rick)) == 2
    await opt_out(api, rick, due_reminders=False)
    await _due_in(api, rick, soon["id"], 20)
    await run_job(app, "notifications.reminders")
    assert len(reminders(mailbox, rick)) == 2


# --- Archived tasks --------------------------------------------------------------------------


async def _archive(api: Api, who: Account, task_id: str) -> None:
    response = await api.client.post(f"{API}/tasks/{task_id}/archive", headers=who.headers)
    assert response.status_code == 200, response.text


async def test_an_archived_task_is_left_out_of_the_digest_and_gets_no_reminder(
    world: tuple[FastAPI, Api, Mailbox],
) -> None:
    app, api, mailbox = world
    abe = await api.account()
    overdue = at(start_of_today() - timedelta(days=1))
    soon = at(utcnow() + timedelta(minutes=30))
    kept = await api.create_task(abe, title="Still open", due_at=overdue)
    shelved = await api.create_task(abe, title="Shelved overdue", due_at=overdue)
    shelved_soon = await api.create_task(abe, title="Shelved soon", due_at=soon)
    await _archive(api, abe, shelved["id"])
    await _archive(api, abe, shelved_soon["id"])
    await run_job(app, "notifications.digest")
    await run_job(app, "notifications.reminders")
    [digest] = digests(mailbox, abe)
    assert kept["title"] in text_of(digest)
    assert "Shelved" not in text_of(digest)
    assert digest["Subject"].endswith("1 overdue, 0 due today")
    assert reminders(mailbox, abe) == []
