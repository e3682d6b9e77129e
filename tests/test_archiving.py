"""Archiving: the periodic job, the archive/restore endpoints, `archived=true` lists, stats,
and the cache following every change."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import update

from primetrade.bootstrap import ensure_admin
from primetrade.jobs import JobContext
from primetrade.kit.db import session_scope, utcnow
from primetrade.tasks.jobs import archive_completed
from primetrade.tasks.models import Task
from tests.conftest import DATABASE_LEGS, asgi_client
from tests.helpers import API, PASSWORD, Account, Api
from tests.jobsupport import app_builder, private_database


async def completed_days_ago(app: FastAPI, task_id: str, days: int) -> None:
    async with session_scope(app.state.runtime.sessions) as session:
        await session.execute(
            update(Task)
            .where(Task.id == uuid.UUID(task_id))
            .values(completed_at=utcnow() - timedelta(days=days))
        )


async def ids(api: Api, who: Account, **params: Any) -> set[str]:
    response = await api.list_tasks(who, **params)
    assert response.status_code == 200, response.text
    return {task["id"] for task in response.json()["items"]}


async def run_archive_job(app: FastAPI) -> None:
    context = JobContext(app.state.background.env, "tasks.archive", "test:archive", 1)
    await archive_completed(context, {})


@pytest.fixture(scope="module", params=DATABASE_LEGS)
def archive_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    yield from private_database(request, tmp_path_factory)


@pytest.fixture
async def quiet_app(archive_db: str) -> AsyncIterator[FastAPI]:
    """An app whose scheduler is off: the archiving job runs only when the test says."""
    async with app_builder(archive_db) as build:
        yield await build()


async def test_the_job_archives_tasks_completed_long_ago(quiet_app: FastAPI) -> None:
    app = quiet_app
    async with asgi_client(app) as client:
        await _archive_job_scenario(app, Api(client))


async def _archive_job_scenario(app: FastAPI, api: Api) -> None:
    who = await api.account()
    old = await api.create_task(who, title="Old", status="done")
    recent = await api.create_task(who, title="Recent", status="done")
    still_open = await api.create_task(who, title="Open")
    await completed_days_ago(app, old["id"], 183)
    await completed_days_ago(app, recent["id"], 181)
    assert await ids(api, who) == {old["id"], recent["id"], still_open["id"]}  # now cached
    stats = (await api.client.get(f"{API}/tasks/stats", headers=who.headers)).json()
    assert stats["total"] == 3

    await run_archive_job(app)

    assert await ids(api, who) == {recent["id"], still_open["id"]}
    assert await ids(api, who, archived="true") == {old["id"]}
    stats = (await api.client.get(f"{API}/tasks/stats", headers=who.headers)).json()
    assert stats["total"] == 2
    assert stats["by_status"]["done"] == 1
    task = await api.client.get(f"{API}/tasks/{old['id']}", headers=who.headers)
    assert task.json()["archived_at"] is not None
    assert task.json()["version"] == old["version"] + 1
    assert task.headers["etag"] == f'"v{old["version"] + 1}"'
    await run_archive_job(app)  # again: nothing more to do
    assert await ids(api, who, archived="true") == {old["id"]}


async def test_archive_and_restore_endpoints(api: Api) -> None:
    who, other = await api.account(), await api.account()
    task = await api.create_task(who, title="Keep for later")
    client = api.client
    assert await ids(api, who) == {task["id"]}  # cached before the change
    url = f"{API}/tasks/{task['id']}"

    stale = await client.post(f"{url}/archive", headers={**who.headers, "If-Match": '"v9"'})
    assert stale.status_code == 412
    archived = await client.post(
        f"{url}/archive", headers={**who.headers, "If-Match": f'"v{task["version"]}"'}
    )
    assert archived.status_code == 200, archived.text
    assert archived.json()["archived_at"] is not None
    assert archived.headers["etag"] == f'"v{task["version"] + 1}"'
    assert await ids(api, who) == set()
    assert await ids(api, who, archived="true") == {task["id"]}
    again = await client.post(f"{url}/archive", headers=who.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "task_already_archived"
    assert (await client.post(f"{url}/restore", headers=other.headers)).status_code == 404

    restored = await client.post(f"{url}/restore", headers=who.headers)
    assert restored.status_code == 200
    assert restored.json()["archived_at"] is None
    assert restored.json()["version"] == task["version"] + 2
    assert await ids(api, who) == {task["id"]}
    assert await ids(api, who, archived="true") == set()
    twice = await client.post(f"{url}/restore", headers=who.headers)
    assert twice.json()["code"] == "task_not_archived"


async def test_admins_list_archived_tasks_too(app: FastAPI, api: Api) -> None:
    who = await api.account()
    task = await api.create_task(who, title="Archived one")
    await api.create_task(who, title="Live one")
    await api.client.post(f"{API}/tasks/{task['id']}/archive", headers=who.headers)
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    await ensure_admin(app.state.runtime.settings, email, PASSWORD, None)
    admin = (await api.login(email)).json()
    headers = {"Authorization": f"Bearer {admin['access_token']}"}
    url = f"{API}/admin/tasks"
    live = (await api.client.get(url, params={"owner_id": who.id}, headers=headers)).json()
    archived = await api.client.get(
        url, params={"owner_id": who.id, "archived": "true"}, headers=headers
    )
    assert [item["title"] for item in live["items"]] == ["Live one"]
    assert [item["id"] for item in archived.json()["items"]] == [task["id"]]
