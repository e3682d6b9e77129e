"""Exports: the file equals the filtered list, progress, expiry and purge, ownership, and a
real worker killed (SIGKILL) in the middle of a build."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from primetrade.exports import service as export_service
from primetrade.exports.models import Export, ExportStatus
from primetrade.jobs.models import DeadJob, JobRun
from primetrade.kit.db import session_scope, utcnow
from primetrade.tasks.models import Task, TaskStatus
from tests.conftest import DATABASE_LEGS, asgi_client
from tests.helpers import API, Account, Api
from tests.jobsupport import (
    app_builder,
    eventually,
    private_database,
    rabbitmq_queue,
    start_worker,
)
from tests.pgserver import free_port

EXPORTS = f"{API}/exports"


@pytest.fixture(scope="module", params=DATABASE_LEGS)
def exports_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    yield from private_database(request, tmp_path_factory)


@pytest.fixture
async def apps(exports_db: str) -> AsyncIterator[Callable[..., Awaitable[FastAPI]]]:
    async with app_builder(exports_db) as build:
        yield build


@pytest.fixture
async def setup(
    apps: Any, tmp_path: Path
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, Api, Path]]:
    export_dir = tmp_path / "exports"
    app = await apps(export_dir=str(export_dir), export_batch_size=2)
    async with asgi_client(app) as client:
        yield app, client, Api(client), export_dir


async def ready(client: httpx.AsyncClient, who: Account, export_id: str) -> dict[str, Any]:
    async def done() -> bool:
        response = await client.get(f"{EXPORTS}/{export_id}", headers=who.headers)
        return response.json()["status"] in ("ready", "failed")

    await eventually(done, "the export")
    body: dict[str, Any] = (await client.get(f"{EXPORTS}/{export_id}", headers=who.headers)).json()
    return body


async def export(
    client: httpx.AsyncClient, who: Account, **request: Any
) -> tuple[dict[str, Any], httpx.Response]:
    response = await client.post(EXPORTS, json=request, headers=who.headers)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"{EXPORTS}/{response.json()['id']}"
    body = await ready(client, who, response.json()["id"])
    file = await client.get(f"{EXPORTS}/{body['id']}/file", headers=who.headers)
    return body, file


async def some_tasks(api: Api, who: Account) -> None:
    soon = datetime.now(UTC) + timedelta(days=2)
    for number in range(5):
        await api.create_task(
            who,
            title=f'Report {number}, "quoted"',
            description="line one\nline two" if number % 2 else "",
            priority="high" if number % 2 else "low",
            tags=["work", f"t{number}"],
            due_at=(soon + timedelta(hours=number)).isoformat() if number != 2 else None,
        )
    await api.create_task(who, title="Groceries", priority="high", tags=["home"])


async def test_json_export_equals_the_filtered_list(setup: Any) -> None:
    _app, client, api, export_dir = setup
    who = await api.account()
    await some_tasks(api, who)
    body, file = await export(client, who, format="json", priority=["high"], tag=["work"])
    listed = (await api.list_tasks(who, priority="high", tag="work", limit=100)).json()["items"]
    assert body["status"] == "ready"
    assert body["row_count"] == len(listed) == 2
    assert body["progress"] == 1.0
    assert file.status_code == 200
    assert file.headers["content-type"] == "application/json"
    assert f'filename="tasks-{body["id"]}.json"' in file.headers["content-disposition"]
    assert file.json() == listed
    assert [path.name for path in export_dir.iterdir()] == [f"{body['id']}.json"]


async def test_csv_export_equals_the_list_in_its_order(setup: Any) -> None:
    _app, client, api, _dir = setup
    who = await api.account()
    await some_tasks(api, who)
    body, file = await export(client, who, format="csv")
    listed = (await api.list_tasks(who, limit=100)).json()["items"]
    assert file.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(file.text, newline="")))
    assert body["row_count"] == len(rows) == 6
    assert [row["id"] for row in rows] == [task["id"] for task in listed]
    for row, task in zip(rows, listed, strict=True):
        assert row["title"] == task["title"]
        assert row["description"] == task["description"]
        assert row["tags"].split() == task["tags"]
        assert row["due_at"] == (task["due_at"] or "")


async def test_progress_expiry_and_purge(setup: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app, client, api, export_dir = setup
    who = await api.account()
    await some_tasks(api, who)
    body, _file = await export(client, who, format="csv", q="report")
    assert body["row_count"] == 5
    expires = datetime.fromisoformat(body["expires_at"])
    created = datetime.fromisoformat(body["created_at"])
    assert timedelta(hours=23) < expires - created <= timedelta(hours=24, minutes=1)

    later = expires + timedelta(seconds=1)
    for module in ("primetrade.exports.service", "primetrade.exports.router"):
        monkeypatch.setattr(f"{module}.utcnow", lambda: later)
    shown = (await client.get(f"{EXPORTS}/{body['id']}", headers=who.headers)).json()
    assert shown["status"] == "expired"
    gone = await client.get(f"{EXPORTS}/{body['id']}/file", headers=who.headers)
    assert gone.status_code == 404
    assert gone.json()["code"] == "export_expired"

    runtime = app.state.runtime
    assert await export_service.purge_expired(runtime.sessions, runtime.settings) == 1
    assert list(export_dir.iterdir()) == []
    async with session_scope(runtime.sessions) as session:
        stored = await session.get(Export, uuid.UUID(body["id"]))
        assert stored is not None
        assert stored.status is ExportStatus.expired


async def test_not_ready_is_409_and_another_users_export_is_404(setup: Any) -> None:
    app, client, api, _dir = setup
    owner, other = await api.account(), await api.account()
    async with session_scope(app.state.runtime.sessions) as session:
        queued = Export(owner_id=uuid.UUID(owner.id), format="csv", filters={}, created_at=utcnow())
        session.add(queued)  # never built: no job for it
    path = f"{EXPORTS}/{queued.id}"
    response = await client.get(f"{path}/file", headers=owner.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "export_not_ready"
    for url in (path, f"{path}/file"):
        response = await client.get(url, headers=other.headers)
        assert response.status_code == 404
        assert response.json()["code"] == "export_not_found"
    mine = (await client.get(EXPORTS, headers=owner.headers)).json()["items"]
    theirs = (await client.get(EXPORTS, headers=other.headers)).json()["items"]
    assert [item["id"] for item in mine] == [str(queued.id)]
    assert mine[0]["status"] == "queued"
    assert mine[0]["progress"] == 0.0
    assert theirs == []


async def test_a_finished_export_is_not_built_again(setup: Any) -> None:
    app, client, api, export_dir = setup
    who = await api.account()
    await some_tasks(api, who)
    body, first = await export(client, who, format="json")
    runtime = app.state.runtime
    settings = runtime.settings
    # A redelivered build of a finished export: nothing changes, the file stays as it was.
    stamp = (export_dir / f"{body['id']}.json").stat().st_mtime_ns
    await api.create_task(who, title="After the export")
    await export_service.build(
        settings, runtime.sessions, runtime.read_sessions, uuid.UUID(body["id"])
    )
    assert (export_dir / f"{body['id']}.json").stat().st_mtime_ns == stamp
    again = await client.get(f"{EXPORTS}/{body['id']}/file", headers=who.headers)
    assert again.content == first.content


async def test_an_export_that_cannot_be_written_fails_for_good_and_has_no_file(
    apps: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")  # EXPORT_DIR beneath a file: no build can ever write there
    app = await apps(
        export_dir=str(blocker / "exports"),
        job_max_retries=1,  # one retry, quickly: the export fails only once both attempts did
        job_min_backoff_seconds=0.01,
        outbox_poll_seconds=0.05,
    )
    async with asgi_client(app) as client:
        api = Api(client)
        who = await api.account()
        await api.create_task(who)
        response = await client.post(EXPORTS, json={"format": "csv"}, headers=who.headers)
        assert response.status_code == 202, response.text
        body = await ready(client, who, response.json()["id"])
        listed = (await client.get(EXPORTS, headers=who.headers)).json()["items"]
        file = await client.get(f"{EXPORTS}/{body['id']}/file", headers=who.headers)

    assert body["status"] == "failed"
    assert [(item["id"], item["status"]) for item in listed] == [(body["id"], "failed")]
    assert file.status_code == 409
    assert file.headers["content-type"] == "application/problem+json"
    problem = file.json()
    assert (problem["status"], problem["code"]) == (409, "export_failed")
    assert "export again" in problem["detail"]
    assert str(blocker) not in file.text  # the server's path stays on the server
    assert blocker.is_file()
    run_key = f"export:{body['id']}"

    async def dead_lettered() -> bool:
        # The export is marked failed just before the runner records the job's end.
        async with session_scope(app.state.runtime.sessions) as session:
            return (
                await session.scalar(select(DeadJob).where(DeadJob.run_key == run_key)) is not None
            )

    await eventually(dead_lettered, "the dead job")
    async with session_scope(app.state.runtime.sessions) as session:
        stored = await session.get(Export, uuid.UUID(body["id"]))
        run = await session.scalar(select(JobRun).where(JobRun.key == run_key))
    assert stored is not None
    assert stored.error is not None
    assert "NotADirectoryError" in stored.error  # the cause, for the operator
    assert run is not None
    assert (run.status, run.attempts) == ("dead", 2)


# --- A real worker, killed half-way --------------------------------------------------------


@pytest.fixture
def rabbit_queue() -> Iterator[str]:
    yield from rabbitmq_queue()


async def many_tasks(app: FastAPI, owner_id: str, count: int) -> None:
    """Rows straight into the table: the test is about the build, not about creating them."""
    start = utcnow() - timedelta(days=1)
    async with session_scope(app.state.runtime.sessions) as session:
        session.add_all(
            Task(
                owner_id=uuid.UUID(owner_id),
                title=f"Bulk {number}",
                title_key=f"bulk {number}",
                description="",
                status=TaskStatus.todo,
                tags=[],
                created_at=start + timedelta(seconds=number),
                updated_at=start,
            )
            for number in range(count)
        )


@pytest.mark.slow
async def test_a_worker_killed_mid_export_is_redelivered_and_finishes_once(
    apps: Any, exports_db: str, rabbit_queue: str, tmp_path: Path
) -> None:
    rows = 1500
    export_dir = tmp_path / "exports"
    settings = {
        "broker_url": "amqp://guest:guest@127.0.0.1:5672/",
        "broker_queue": rabbit_queue,
        "export_dir": str(export_dir),
        "export_batch_size": 3,  # many small batches: the build takes a while, deterministically
        "mail_url": "console://",
    }
    app = await apps(**settings)
    async with asgi_client(app) as client:
        who = await Api(client).account()
        await many_tasks(app, who.id, rows)
        response = await client.post(EXPORTS, json={"format": "csv"}, headers=who.headers)
        export_id = response.json()["id"]
        worker_env = {"database_url": exports_db, **settings}

        first, log = start_worker(tmp_path, free_port(), **worker_env)
        try:

            async def started() -> bool:
                shown = (await client.get(f"{EXPORTS}/{export_id}", headers=who.headers)).json()
                return bool(shown["row_count"] > 0)

            await eventually(started, "the first rows of the export")
        finally:
            # The whole worker at once: Dramatiq's main process and the one running the job.
            os.killpg(first.pid, signal.SIGKILL)
            await asyncio.to_thread(first.wait, 30)
        killed = (await client.get(f"{EXPORTS}/{export_id}", headers=who.headers)).json()
        assert killed["status"] == "running", log.read_text()
        assert 0 < killed["row_count"] < rows
        assert [path.name for path in export_dir.iterdir()] == [f"{export_id}.csv.part"]

        second, log = start_worker(tmp_path, free_port(), **worker_env)
        try:
            body = await ready(client, who, export_id)
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.to_thread(second.wait, 30)
        file = await client.get(f"{EXPORTS}/{export_id}/file", headers=who.headers)
    assert body["status"] == "ready", log.read_text()
    assert body["row_count"] == rows
    assert [path.name for path in export_dir.iterdir()] == [f"{export_id}.csv"]
    lines = file.text.splitlines()
    assert len(lines) == rows + 1
    assert len({line.split(",")[0] for line in lines[1:]}) == rows  # every task exactly once
    async with session_scope(app.state.runtime.sessions) as session:
        run = await session.scalar(select(JobRun).where(JobRun.key == f"export:{export_id}"))
    assert run is not None
    assert run.status == "done"
    assert run.attempts == 2  # the killed delivery and the redelivery: built to the end once
