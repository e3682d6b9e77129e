"""Creating, reading, changing and deleting one task: fields, validation, ETags, ownership."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from primetrade.tasks.models import Task
from tests.conftest import _asyncpg_dsn, asgi_client
from tests.helpers import API, Account, Api, assert_problem
from tests.jobsupport import eventually, jobs_settled


def task_url(task_id: str) -> str:
    return f"{API}/tasks/{task_id}"


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def count_tasks(app: Any) -> int:
    async with app.state.runtime.engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(Task))).scalar())


async def read(client: httpx.AsyncClient, who: Account, task_id: str) -> dict[str, Any]:
    response = await client.get(task_url(task_id), headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def patch(
    client: httpx.AsyncClient, who: Account, task_id: str, body: Any, **headers: str
) -> httpx.Response:
    return await client.patch(task_url(task_id), json=body, headers={**who.headers, **headers})


# --- create -------------------------------------------------------------------------------


async def test_create_returns_201_with_location_etag_and_defaults(api: Api, client):
    alice = await api.account()
    before = datetime.now(UTC)
    response = await client.post(f"{API}/tasks", json={"title": "Write it"}, headers=alice.headers)
    after = datetime.now(UTC)

    assert response.status_code == 201, response.text
    task = response.json()
    assert response.headers["location"] == task_url(task["id"])
    assert response.headers["etag"] == '"v1"'
    assert response.headers["content-type"].startswith("application/json")
    assert task["title"] == "Write it"
    assert task["description"] == ""
    assert task["status"] == "todo"
    assert task["priority"] == "medium"
    assert task["due_at"] is None
    assert task["tags"] == []
    assert task["completed_at"] is None
    assert task["version"] == 1
    assert before <= parse(task["created_at"]) <= after
    assert task["created_at"] == task["updated_at"]
    assert "owner_id" not in task


async def test_created_task_reads_back_identically(api: Api, client):
    alice = await api.account()
    due = "2031-05-06T07:08:09.123456+00:00"
    created = await api.create_task(
        alice,
        title="Full",
        description="All the fields",
        status="in_progress",
        priority="urgent",
        due_at=due,
        tags=["a", "b"],
    )
    assert await read(client, alice, created["id"]) == created
    assert parse(created["due_at"]) == parse(due)


async def test_task_ids_are_uuid7_and_time_ordered(api: Api):
    alice = await api.account()
    ids = [uuid.UUID((await api.create_task(alice))["id"]) for _ in range(5)]
    assert all(value.version == 7 for value in ids)
    assert ids == sorted(ids)


async def test_title_is_trimmed(api: Api):
    alice = await api.account()
    task = await api.create_task(alice, title="   padded title \t ")
    assert task["title"] == "padded title"


@pytest.mark.parametrize("title", ["", "   ", "x" * 201])
async def test_invalid_title_is_rejected_and_nothing_created(api: Api, client, app, title):
    alice = await api.account()
    response = await client.post(f"{API}/tasks", json={"title": title}, headers=alice.headers)
    assert_problem(response, 422, "validation_failed")
    assert await count_tasks(app) == 0


async def test_title_of_200_characters_is_accepted(api: Api):
    alice = await api.account()
    task = await api.create_task(alice, title="x" * 200)
    assert len(task["title"]) == 200


async def test_missing_title_is_rejected(api: Api, client):
    alice = await api.account()
    response = await client.post(f"{API}/tasks", json={}, headers=alice.headers)
    assert_problem(response, 422, "validation_failed")


async def test_description_limit_is_10000_characters(api: Api, client, app):
    alice = await api.account()
    ok = await api.create_task(alice, description="d" * 10_000)
    assert len(ok["description"]) == 10_000
    response = await client.post(
        f"{API}/tasks", json={"title": "t", "description": "d" * 10_001}, headers=alice.headers
    )
    assert_problem(response, 422, "validation_failed")
    assert await count_tasks(app) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "finished"),
        ("priority", "critical"),
        ("priority", 3),
        ("tags", "not-a-list"),
        ("due_at", "tomorrow"),
    ],
)
async def test_invalid_field_values_are_rejected(api: Api, client, app, field, value):
    alice = await api.account()
    response = await client.post(
        f"{API}/tasks", json={"title": "t", field: value}, headers=alice.headers
    )
    assert_problem(response, 422, "validation_failed")
    assert await count_tasks(app) == 0


@pytest.mark.parametrize(
    "field",
    [
        ("owner_id", str(uuid.uuid4())),
        ("id", str(uuid.uuid4())),
        ("version", 7),
        ("created_at", "2020-01-01T00:00:00Z"),
        ("completed_at", "2020-01-01T00:00:00Z"),
        ("colour", "red"),
    ],
    ids=lambda field: field[0],
)
async def test_unknown_or_server_fields_are_rejected_and_nothing_created(
    api: Api, client, app, field
):
    alice = await api.account()
    name, value = field
    response = await client.post(
        f"{API}/tasks", json={"title": "t", name: value}, headers=alice.headers
    )
    assert_problem(response, 422, "validation_failed")
    assert any(name in error["loc"] for error in response.json()["errors"])
    assert await count_tasks(app) == 0


async def test_naive_due_at_is_rejected(api: Api, client, app):
    alice = await api.account()
    response = await client.post(
        f"{API}/tasks", json={"title": "t", "due_at": "2030-01-01T10:00:00"}, headers=alice.headers
    )
    assert_problem(response, 422, "validation_failed")
    assert await count_tasks(app) == 0


async def test_due_at_with_offset_is_the_same_instant_in_utc(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice, due_at="2030-01-01T10:00:00+02:00")
    assert parse(task["due_at"]) == datetime(2030, 1, 1, 8, tzinfo=UTC)
    assert parse(task["due_at"]).utcoffset() == timedelta(0)
    stored = await read(client, alice, task["id"])
    assert stored["due_at"] == task["due_at"]


async def test_create_done_sets_completed_at(api: Api):
    alice = await api.account()
    task = await api.create_task(alice, status="done")
    assert task["completed_at"] is not None
    assert task["completed_at"] == task["created_at"]


async def test_body_that_is_not_json_is_rejected(api: Api, client, app):
    alice = await api.account()
    response = await client.post(
        f"{API}/tasks",
        content=b"{not json",
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert_problem(response, 422)
    assert await count_tasks(app) == 0


async def test_create_needs_a_token(client, app):
    response = await client.post(f"{API}/tasks", json={"title": "t"})
    assert_problem(response, 401)
    assert await count_tasks(app) == 0


# --- tags -------------------------------------------------------------------------------


async def test_tags_are_normalised_and_deduplicated_in_order(api: Api):
    alice = await api.account()
    task = await api.create_task(
        alice, tags=["  Work ", "WORK", "Q3  Review", "ｆｕｌｌ\u3000Width", "q3-review", "é"]
    )
    assert task["tags"] == ["work", "q3-review", "full-width", "é"]


async def test_nfkc_folds_compatibility_characters_in_tags(api: Api):
    alice = await api.account()
    task = await api.create_task(alice, tags=["ﬁle", "①"])  # ligature fi, circled one
    assert task["tags"] == ["file", "1"]


async def test_twenty_tags_are_accepted(api: Api):
    alice = await api.account()
    task = await api.create_task(alice, tags=[f"t{i}" for i in range(20)])
    assert len(task["tags"]) == 20


@pytest.mark.parametrize(
    "tags",
    [[f"t{i}" for i in range(21)], ["x" * 33], ["   "], [""], [None]],
    ids=["too-many", "too-long", "blank", "empty", "null"],
)
async def test_invalid_tags_are_rejected(api: Api, client, app, tags):
    alice = await api.account()
    response = await client.post(
        f"{API}/tasks", json={"title": "t", "tags": tags}, headers=alice.headers
    )
    assert_problem(response, 422, "validation_failed")
    assert await count_tasks(app) == 0


async def test_tag_length_is_counted_after_normalisation(api: Api):
    alice = await api.account()
    task = await api.create_task(alice, tags=["  " + "x" * 32 + "  "])
    assert task["tags"] == ["x" * 32]


# --- read -------------------------------------------------------------------------------


async def test_read_sends_etag_of_the_version(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    response = await client.get(task_url(task["id"]), headers=alice.headers)
    assert response.status_code == 200
    assert response.headers["etag"] == '"v1"'


async def test_if_none_match_current_etag_gives_304_without_body(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    response = await client.get(
        task_url(task["id"]), headers={**alice.headers, "If-None-Match": '"v1"'}
    )
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == '"v1"'


async def test_if_none_match_with_a_list_or_weak_tag_still_matches(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    for header in ('"v9", "v1"', 'W/"v1"', "*"):
        response = await client.get(
            task_url(task["id"]), headers={**alice.headers, "If-None-Match": header}
        )
        assert response.status_code == 304, header


async def test_if_none_match_stale_etag_gives_200(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    assert (await patch(client, alice, task["id"], {"title": "new"})).status_code == 200
    response = await client.get(
        task_url(task["id"]), headers={**alice.headers, "If-None-Match": '"v1"'}
    )
    assert response.status_code == 200
    assert response.headers["etag"] == '"v2"'
    assert response.json()["title"] == "new"


async def test_another_users_task_is_404_without_data(api: Api, client):
    alice, bob = await api.account(), await api.account()
    task = await api.create_task(alice, title="Alice's secret")
    response = await client.get(task_url(task["id"]), headers=bob.headers)
    assert_problem(response, 404, "task_not_found")
    assert "secret" not in response.text
    assert "etag" not in response.headers


async def test_unknown_task_is_404(api: Api, client):
    alice = await api.account()
    response = await client.get(task_url(str(uuid.uuid4())), headers=alice.headers)
    assert_problem(response, 404, "task_not_found")


async def test_unknown_and_foreign_task_answers_are_indistinguishable(api: Api, client):
    alice, bob = await api.account(), await api.account()
    task = await api.create_task(alice)
    foreign = (await client.get(task_url(task["id"]), headers=bob.headers)).json()
    missing = (await client.get(task_url(str(uuid.uuid4())), headers=bob.headers)).json()
    for body in (foreign, missing):
        body.pop("instance"), body.pop("request_id", None)
    assert foreign == missing


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "0" * 33])
async def test_malformed_id_is_422(api: Api, client, bad_id):
    alice = await api.account()
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(
            method, task_url(bad_id), headers=alice.headers, json={"title": "x"}
        )
        assert_problem(response, 422, "validation_failed")


async def test_read_needs_a_token(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    response = await client.get(task_url(task["id"]))
    assert_problem(response, 401)


# --- update -------------------------------------------------------------------------------


async def test_patch_changes_only_the_given_fields(api: Api, client):
    alice = await api.account()
    task = await api.create_task(
        alice, title="Old", description="keep", priority="high", tags=["keep"]
    )
    response = await patch(client, alice, task["id"], {"title": "  New  "})
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["title"] == "New"
    assert updated["description"] == "keep"
    assert updated["priority"] == "high"
    assert updated["tags"] == ["keep"]
    assert updated["version"] == 2
    assert response.headers["etag"] == '"v2"'
    assert parse(updated["updated_at"]) > parse(task["updated_at"])
    assert updated["created_at"] == task["created_at"]
    assert await read(client, alice, task["id"]) == updated


async def test_each_real_change_bumps_the_version_once(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    changes = [
        {"title": "a"},
        {"description": "b"},
        {"priority": "low", "status": "in_progress"},
        {"tags": ["x"]},
        {"due_at": "2030-01-01T00:00:00Z"},
        {"due_at": None},
    ]
    for expected, change in enumerate(changes, start=2):
        response = await patch(client, alice, task["id"], change)
        assert response.status_code == 200, response.text
        assert response.json()["version"] == expected
    assert (await read(client, alice, task["id"]))["version"] == len(changes) + 1


async def test_patch_that_changes_nothing_keeps_version_and_updated_at(api: Api, client):
    alice = await api.account()
    task = await api.create_task(
        alice, title="Same", priority="high", tags=["A tag"], due_at="2030-01-01T10:00:00+00:00"
    )
    for body in (
        {},
        {"title": "Same"},
        {"title": "  Same "},
        {"priority": "high", "tags": ["a-tag"]},
        {"tags": ["A  TAG"]},
        {"due_at": "2030-01-01T12:00:00+02:00"},
    ):
        response = await patch(client, alice, task["id"], body)
        assert response.status_code == 200, response.text
        assert response.json()["version"] == 1, body
        assert response.headers["etag"] == '"v1"'
    stored = await read(client, alice, task["id"])
    assert stored["version"] == 1
    assert stored["updated_at"] == task["updated_at"]


async def test_completed_at_follows_the_done_status(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)

    done = (await patch(client, alice, task["id"], {"status": "done"})).json()
    assert done["completed_at"] is not None
    assert done["completed_at"] == done["updated_at"]

    still_done = (await patch(client, alice, task["id"], {"title": "renamed"})).json()
    assert still_done["completed_at"] == done["completed_at"]

    reopened = (await patch(client, alice, task["id"], {"status": "in_progress"})).json()
    assert reopened["completed_at"] is None
    assert (await read(client, alice, task["id"]))["completed_at"] is None


async def test_due_at_null_clears_the_due_date(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice, due_at="2030-01-01T00:00:00Z")
    response = await patch(client, alice, task["id"], {"due_at": None})
    assert response.status_code == 200
    assert response.json()["due_at"] is None
    assert (await read(client, alice, task["id"]))["due_at"] is None


async def test_patch_due_at_is_returned_in_utc(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    response = await patch(client, alice, task["id"], {"due_at": "2030-06-01T12:00:00-05:00"})
    assert response.status_code == 200
    assert response.json()["due_at"] == (await read(client, alice, task["id"]))["due_at"]
    assert parse(response.json()["due_at"]) == datetime(2030, 6, 1, 17, tzinfo=UTC)


@pytest.mark.parametrize("field", ["title", "description", "status", "priority", "tags"])
async def test_explicit_null_for_a_required_field_is_422(api: Api, client, field):
    alice = await api.account()
    task = await api.create_task(alice, description="kept")
    response = await patch(client, alice, task["id"], {field: None})
    assert_problem(response, 422, "validation_failed")
    assert await read(client, alice, task["id"]) == task


@pytest.mark.parametrize(
    "body",
    [
        {"title": ""},
        {"title": "x" * 201},
        {"status": "nope"},
        {"priority": "extreme"},
        {"due_at": "2030-01-01T00:00:00"},
        {"tags": ["y" * 33]},
        {"owner_id": str(uuid.uuid4())},
        {"version": 5},
        {"id": str(uuid.uuid4())},
        {"title": "valid", "unknown": 1},
    ],
)
async def test_invalid_patch_is_422_and_changes_nothing(api: Api, client, body):
    alice = await api.account()
    task = await api.create_task(alice)
    response = await patch(client, alice, task["id"], body)
    assert_problem(response, 422, "validation_failed")
    assert await read(client, alice, task["id"]) == task


async def test_patch_with_current_if_match_applies(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    response = await patch(client, alice, task["id"], {"title": "ok"}, **{"If-Match": '"v1"'})
    assert response.status_code == 200
    assert response.json()["version"] == 2


async def test_patch_with_stale_if_match_is_412_and_changes_nothing(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice, title="first")
    assert (await patch(client, alice, task["id"], {"title": "second"})).status_code == 200
    current = await read(client, alice, task["id"])

    response = await patch(client, alice, task["id"], {"title": "lost"}, **{"If-Match": '"v1"'})
    assert_problem(response, 412, "version_mismatch")
    assert await read(client, alice, task["id"]) == current


async def test_patch_with_unparseable_if_match_is_412(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    response = await patch(client, alice, task["id"], {"title": "x"}, **{"If-Match": "garbage"})
    assert_problem(response, 412, "version_mismatch")
    assert await read(client, alice, task["id"]) == task


async def test_patch_with_if_match_star_applies(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    response = await patch(client, alice, task["id"], {"title": "any"}, **{"If-Match": "*"})
    assert response.status_code == 200
    assert response.json()["title"] == "any"


async def test_patch_with_if_match_list_containing_current_version_applies(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    response = await patch(client, alice, task["id"], {"title": "x"}, **{"If-Match": '"v7", "v1"'})
    assert response.status_code == 200


async def test_another_user_cannot_patch(api: Api, client):
    alice, bob = await api.account(), await api.account()
    task = await api.create_task(alice, title="mine")
    response = await patch(client, bob, task["id"], {"title": "stolen"})
    assert_problem(response, 404, "task_not_found")
    assert await read(client, alice, task["id"]) == task


async def test_patch_of_unknown_task_is_404(api: Api, client):
    alice = await api.account()
    response = await patch(client, alice, str(uuid.uuid4()), {"title": "x"})
    assert_problem(response, 404, "task_not_found")


# --- delete -------------------------------------------------------------------------------


async def test_delete_then_gone(api: Api, client, app):
    alice = await api.account()
    task = await api.create_task(alice)
    response = await client.delete(task_url(task["id"]), headers=alice.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get(task_url(task["id"]), headers=alice.headers), 404)
    again = await client.delete(task_url(task["id"]), headers=alice.headers)
    assert_problem(again, 404, "task_not_found")
    assert await count_tasks(app) == 0


async def test_delete_with_stale_if_match_is_412_and_keeps_the_task(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    await patch(client, alice, task["id"], {"title": "v2"})
    response = await client.delete(
        task_url(task["id"]), headers={**alice.headers, "If-Match": '"v1"'}
    )
    assert_problem(response, 412, "version_mismatch")
    assert (await read(client, alice, task["id"]))["title"] == "v2"


async def test_delete_with_current_if_match_deletes(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    response = await client.delete(
        task_url(task["id"]), headers={**alice.headers, "If-Match": '"v1"'}
    )
    assert response.status_code == 204
    assert_problem(await client.get(task_url(task["id"]), headers=alice.headers), 404)


async def test_delete_with_if_match_star_deletes(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    await patch(client, alice, task["id"], {"title": "v2"})
    response = await client.delete(task_url(task["id"]), headers={**alice.headers, "If-Match": "*"})
    assert response.status_code == 204
    assert_problem(await client.get(task_url(task["id"]), headers=alice.headers), 404)


async def test_another_user_cannot_delete(api: Api, client):
    alice, bob = await api.account(), await api.account()
    task = await api.create_task(alice)
    response = await client.delete(task_url(task["id"]), headers=bob.headers)
    assert_problem(response, 404, "task_not_found")
    assert await read(client, alice, task["id"]) == task


async def test_deleting_one_task_leaves_the_others(api: Api, client):
    alice = await api.account()
    keep, drop = await api.create_task(alice), await api.create_task(alice)
    assert (await client.delete(task_url(drop["id"]), headers=alice.headers)).status_code == 204
    assert await read(client, alice, keep["id"]) == keep


# --- concurrency ----------------------------------------------------------------------------


async def test_concurrent_conditional_updates_let_exactly_one_win(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    answers = await asyncio.gather(
        *(
            patch(client, alice, task["id"], {"title": f"writer {i}"}, **{"If-Match": '"v1"'})
            for i in range(4)
        )
    )
    # Writers are serialised (row lock on PostgreSQL, BEGIN IMMEDIATE on SQLite), so the
    # losers see the winner's version and get a clean 412, never a lock error.
    winners = [a for a in answers if a.status_code == 200]
    assert len(winners) == 1, [a.text for a in answers]
    losers = [a for a in answers if a.status_code != 200]
    assert [(a.status_code, a.json()["code"]) for a in losers] == [(412, "version_mismatch")] * 3
    stored = await read(client, alice, task["id"])
    assert stored["version"] == 2
    assert stored["title"] == winners[0].json()["title"]


async def test_concurrent_unconditional_updates_never_lose_the_version_count(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    answers = await asyncio.gather(
        *(patch(client, alice, task["id"], {"description": f"d{i}"}) for i in range(4))
    )
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert sorted(a.json()["version"] for a in answers) == [2, 3, 4, 5]
    stored = await read(client, alice, task["id"])
    assert stored["version"] == 5


@contextlib.asynccontextmanager
async def task_row_locked(database_url: str, task_id: str) -> AsyncIterator[None]:
    """Hold a lock on the task from outside the service, as a long transaction would."""
    if database_url.startswith("sqlite"):
        path = make_url(database_url).database
        assert path is not None
        # Taken on a thread: waiting for the lock must not block the event loop, on which the
        # app's own background work (the outbox relay, the schedule) may be finishing a write.
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            # SQLite locks the whole database for writers.
            await asyncio.to_thread(holder.execute, "BEGIN IMMEDIATE")
            yield
        finally:
            if holder.in_transaction:
                await asyncio.to_thread(holder.execute, "ROLLBACK")
            holder.close()
        return
    connection = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        async with connection.transaction():
            await connection.execute(
                "SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", uuid.UUID(task_id)
            )
            yield
    finally:
        await connection.close()


async def test_a_write_that_cannot_get_its_lock_in_time_is_a_503_and_changes_nothing(
    app_factory: Any, database_url: str
):
    # Set up with the usual lock timeout and let the background jobs this causes (the
    # welcome email) finish: only the held lock below may keep a write waiting.
    quiet = {"embedded_scheduler": False}
    setup = await app_factory(**quiet)
    async with asgi_client(setup) as http:
        api = Api(http)
        alice = await api.account()
        task = await api.create_task(alice, title="Before")
    await eventually(lambda: jobs_settled(setup), "the setup's background jobs")
    application = await app_factory(db_lock_timeout_ms=200, **quiet)
    async with asgi_client(application) as http:
        async with task_row_locked(database_url, task["id"]):
            answer = await patch(http, alice, task["id"], {"title": "After"})
        assert_problem(answer, 503, "database_busy")
        assert int(answer.headers["retry-after"]) >= 1
        assert (await read(http, alice, task["id"]))["title"] == "Before"
        # The lock is gone: the same write now goes through.
        assert (await patch(http, alice, task["id"], {"title": "After"})).status_code == 200
