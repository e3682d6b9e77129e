"""The weekly report: its numbers as JSON, and the weekly email job."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from primetrade.jobs import JobContext
from primetrade.jobs.models import OutboxEntry
from primetrade.kit.db import session_scope, utcnow
from primetrade.mail.models import SentMail
from primetrade.mail.render import render
from primetrade.reports.jobs import send_weekly_reports
from primetrade.tasks.models import Task
from tests.conftest import DATABASE_LEGS, asgi_client
from tests.helpers import API, Account, Api
from tests.jobsupport import app_builder, eventually, private_database

WEEKLY = f"{API}/reports/weekly"


async def shift(app: FastAPI, task_id: str, **ages: int) -> None:
    """Move a task's times back by the given days (`created_at=10`)."""
    now = utcnow()
    values = {name: now - timedelta(days=days) for name, days in ages.items()}
    async with session_scope(app.state.runtime.sessions) as session:
        await session.execute(update(Task).where(Task.id == uuid.UUID(task_id)).values(**values))


async def a_week(app: FastAPI, api: Api, who: Account) -> None:
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    old_done = await api.create_task(who, title="Old, done this week", status="done")
    await shift(app, old_done["id"], created_at=30, completed_at=2)
    ancient = await api.create_task(who, title="Old, done long ago", status="done")
    await shift(app, ancient["id"], created_at=30, completed_at=20)
    await api.create_task(who, title="New, late", priority="urgent", due_at=yesterday)
    await api.create_task(who, title="New", priority="low")
    archived = await api.create_task(who, title="New, archived", priority="low")
    await api.client.post(f"{API}/tasks/{archived['id']}/archive", headers=who.headers)


async def test_weekly_report_numbers(app: FastAPI, api: Api) -> None:
    who, other = await api.account(), await api.account()
    await a_week(app, api, who)
    await api.create_task(other, title="Not mine")
    response = await api.client.get(WEEKLY, params={"tz": "Europe/Paris"}, headers=who.headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["created"] == 3
    assert report["completed"] == 1
    assert report["overdue"] == 1
    assert report["by_status"] == {"todo": 2, "in_progress": 0, "done": 2}
    assert report["by_priority"] == {"low": 1, "medium": 0, "high": 0, "urgent": 1}
    start = datetime.fromisoformat(report["period_start"])
    assert start.utcoffset() == timedelta(0)
    local = start.astimezone(ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute) == (0, 0)
    bad = await api.client.get(WEEKLY, params={"tz": "Mars/Olympus"}, headers=who.headers)
    assert bad.status_code == 422


@pytest.fixture(scope="module", params=DATABASE_LEGS)
def reports_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    yield from private_database(request, tmp_path_factory)


@pytest.fixture
async def quiet_app(reports_db: str) -> AsyncIterator[FastAPI]:
    async with app_builder(reports_db) as build:
        yield await build()


async def count(app: FastAPI, model: Any, *where: Any) -> int:
    async with session_scope(app.state.runtime.sessions) as session:
        statement = select(func.count()).select_from(model).where(*where)
        return int(await session.scalar(statement) or 0)


async def test_weekly_job_mails_active_users_with_activity_once(quiet_app: FastAPI) -> None:
    app = quiet_app
    async with asgi_client(app) as client:
        api = Api(client)
        busy, idle, unwilling = await api.account(), await api.account(), await api.account()
        await a_week(app, api, busy)
        await a_week(app, api, unwilling)
        opted_out = await client.patch(
            f"{API}/users/me/notifications",
            json={"weekly_report": False},
            headers=unwilling.headers,
        )
        assert opted_out.status_code == 200, opted_out.text
        quiet_task = await api.create_task(idle, title="Long ago")
        await shift(app, quiet_task["id"], created_at=30)
    context = JobContext(app.state.background.env, "reports.weekly", "test:weekly", 1)
    await send_weekly_reports(context, {})
    await send_weekly_reports(context, {})  # a redelivery in the same week: no second email
    weekly = OutboxEntry.dedupe_key.like("weekly-report:%")
    assert await count(app, OutboxEntry, weekly) == 1

    async def sent() -> bool:
        return await count(app, SentMail, SentMail.template == "weekly_report") == 1

    await eventually(sent, "the weekly email")
    async with session_scope(app.state.runtime.sessions) as session:
        entry = await session.scalar(select(OutboxEntry).where(weekly))
    assert entry is not None
    assert entry.payload["to"] == busy.email
    message = render(
        "weekly_report",
        {"app_url": "http://x", **entry.payload["context"]},
        sender="a@b.c",
        to=busy.email,
        key="k",
    )
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    assert "Completed: 1" in text.get_content()
    assert "<strong>3</strong>" in html.get_content()
    assert "1 completed, 3 created" in str(message["Subject"])
