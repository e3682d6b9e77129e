"""GET /tasks/stats: counts by status and priority, overdue, due today, recently done."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import update

from primetrade.tasks.models import Task
from tests.helpers import API, Account, Api

STATS = f"{API}/tasks/stats"
EMPTY = {
    "total": 0,
    "by_status": {"todo": 0, "in_progress": 0, "done": 0},
    "by_priority": {"low": 0, "medium": 0, "high": 0, "urgent": 0},
    "overdue": 0,
    "due_today": 0,
    "completed_last_7_days": 0,
}


async def stats(client: httpx.AsyncClient, who: Account, **params: str) -> dict[str, Any]:
    response = await client.get(STATS, params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


async def set_completed_at(app: Any, task_id: str, value: datetime) -> None:
    async with app.state.runtime.engine.begin() as connection:
        await connection.execute(
            update(Task).where(Task.id == uuid.UUID(task_id)).values(completed_at=value)
        )


async def test_no_tasks_gives_zeros_for_every_key(api: Api, client):
    alice = await api.account()
    assert await stats(client, alice) == EMPTY


async def test_counts_by_status_and_priority(api: Api, client):
    alice = await api.account()
    for status, priority in [
        ("todo", "low"),
        ("todo", "urgent"),
        ("in_progress", "urgent"),
        ("done", "medium"),
        ("done", "urgent"),
        ("done", "high"),
    ]:
        await api.create_task(alice, status=status, priority=priority)
    body = await stats(client, alice)
    assert body["total"] == 6
    assert body["by_status"] == {"todo": 2, "in_progress": 1, "done": 3}
    assert body["by_priority"] == {"low": 1, "medium": 1, "high": 1, "urgent": 3}


async def test_counts_follow_updates_and_deletes(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice, priority="low")
    await api.create_task(alice)
    changed = await client.patch(
        f"{API}/tasks/{task['id']}",
        json={"status": "in_progress", "priority": "high"},
        headers=alice.headers,
    )
    assert changed.status_code == 200
    body = await stats(client, alice)
    assert body["by_status"]["in_progress"] == 1
    assert body["by_priority"] == {"low": 0, "medium": 1, "high": 1, "urgent": 0}
    assert (await client.delete(f"{API}/tasks/{task['id']}", headers=alice.headers)).status_code
    body = await stats(client, alice)
    assert body["total"] == 1
    assert body["by_status"] == {"todo": 1, "in_progress": 0, "done": 0}


async def test_overdue_counts_open_tasks_past_due(api: Api, client):
    alice = await api.account()
    now = datetime.now(UTC)
    await api.create_task(alice, due_at=iso(now - timedelta(days=3)))
    await api.create_task(alice, due_at=iso(now - timedelta(minutes=1)), status="in_progress")
    await api.create_task(alice, due_at=iso(now - timedelta(days=1)), status="done")
    await api.create_task(alice, due_at=iso(now + timedelta(hours=1)))
    await api.create_task(alice)
    assert (await stats(client, alice))["overdue"] == 2


async def test_overdue_matches_the_overdue_list_filter(api: Api, client):
    alice = await api.account()
    now = datetime.now(UTC)
    for days in (-5, -1, 2):
        for status in ("todo", "done"):
            await api.create_task(alice, due_at=iso(now + timedelta(days=days)), status=status)
    listed = (await api.list_tasks(alice, overdue="true", include_total="true")).json()["total"]
    assert (await stats(client, alice))["overdue"] == listed == 2


def today_in(zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


async def due_today_for(api: Api, client: httpx.AsyncClient, tz: str) -> tuple[int, int]:
    """(expected, answered) due_today for a fresh user with tasks around today's edges."""
    zone = ZoneInfo(tz)
    for _ in range(2):  # a second try only if midnight passed while the test ran
        who = await api.account()
        start, end = today_in(zone)
        inside = [start, start + timedelta(hours=1), end - timedelta(microseconds=1)]
        outside = [start - timedelta(microseconds=1), end, end + timedelta(hours=2)]
        for due in inside + outside:
            await api.create_task(who, due_at=iso(due))
        await api.create_task(who, due_at=iso(start + timedelta(hours=2)), status="done")
        await api.create_task(who)
        answered = (await stats(client, who, tz=tz))["due_today"]
        if today_in(zone) == (start, end):
            return len(inside), answered
    raise AssertionError("the day changed twice")


@pytest.mark.parametrize(
    "tz", ["UTC", "Europe/Paris", "America/Los_Angeles", "Pacific/Kiritimati", "Asia/Kolkata"]
)
async def test_due_today_counts_open_tasks_due_in_the_local_day(api: Api, client, tz):
    expected, answered = await due_today_for(api, client, tz)
    assert answered == expected


async def test_due_today_defaults_to_utc(api: Api, client):
    alice = await api.account()
    start, _ = today_in(ZoneInfo("UTC"))
    await api.create_task(alice, due_at=iso(start + timedelta(minutes=30)))
    await api.create_task(alice, due_at=iso(start - timedelta(minutes=30)))
    if today_in(ZoneInfo("UTC"))[0] == start:
        assert (await stats(client, alice))["due_today"] == 1


async def test_the_same_task_is_due_today_in_one_zone_and_not_another(api: Api, client):
    alice = await api.account()
    paris, utc = ZoneInfo("Europe/Paris"), ZoneInfo("UTC")
    # 00:30 in Paris is still the previous day in UTC (Paris is UTC+1 or UTC+2).
    paris_start, paris_end = today_in(paris)
    due = paris_start + timedelta(minutes=30)
    await api.create_task(alice, due_at=iso(due))
    in_paris = (await stats(client, alice, tz="Europe/Paris"))["due_today"]
    in_utc = (await stats(client, alice))["due_today"]
    utc_start, utc_end = today_in(utc)
    if today_in(paris) == (paris_start, paris_end):
        assert in_paris == 1
        assert in_utc == int(utc_start <= due < utc_end)
        # Outside Paris's first hour or two after midnight, UTC's today has already begun.
        if datetime.now(paris) - paris_start > timedelta(hours=2):
            assert in_utc == 0


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "../../etc/passwd", "UTC+2", "", "x" * 65])
async def test_unknown_time_zone_is_422(api: Api, client, tz):
    alice = await api.account()
    response = await client.get(STATS, params={"tz": tz}, headers=alice.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation_failed"


async def test_completed_last_7_days(api: Api, client, app):
    alice = await api.account()
    now = datetime.now(UTC)
    await api.create_task(alice, status="done")
    recent = await api.create_task(alice, status="done")
    await set_completed_at(app, recent["id"], now - timedelta(days=6, hours=23))
    old = await api.create_task(alice, status="done")
    await set_completed_at(app, old["id"], now - timedelta(days=7, minutes=5))
    await api.create_task(alice, status="in_progress")
    body = await stats(client, alice)
    assert body["completed_last_7_days"] == 2
    assert body["by_status"]["done"] == 3


async def test_reopening_a_task_removes_it_from_completed(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    done = await client.patch(
        f"{API}/tasks/{task['id']}", json={"status": "done"}, headers=alice.headers
    )
    assert done.status_code == 200
    assert (await stats(client, alice))["completed_last_7_days"] == 1
    reopened = await client.patch(
        f"{API}/tasks/{task['id']}", json={"status": "todo"}, headers=alice.headers
    )
    assert reopened.status_code == 200
    assert (await stats(client, alice))["completed_last_7_days"] == 0


async def test_only_the_callers_tasks_count(api: Api, client):
    alice, bob = await api.account(), await api.account()
    now = datetime.now(UTC)
    await api.create_task(bob, status="done", priority="urgent")
    await api.create_task(bob, due_at=iso(now - timedelta(days=1)))
    await api.create_task(bob, due_at=iso(now))
    await api.create_task(alice, priority="low")
    body = await stats(client, alice)
    assert body == {
        **EMPTY,
        "total": 1,
        "by_status": {**EMPTY["by_status"], "todo": 1},
        "by_priority": {**EMPTY["by_priority"], "low": 1},
    }


async def test_stats_need_a_token(client):
    response = await client.get(STATS)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
