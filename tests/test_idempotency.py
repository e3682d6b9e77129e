"""Idempotency-Key on POST /tasks: a retried create replays the first answer."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from primetrade.kit.idempotency import IdempotencyKey
from primetrade.tasks.models import Task
from tests.helpers import API, Account, Api

TASKS = f"{API}/tasks"


async def post(
    client: httpx.AsyncClient, who: Account, body: Any, key: str | None = None
) -> httpx.Response:
    headers = dict(who.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post(TASKS, json=body, headers=headers)


async def task_count(app: Any, owner: Account | None = None) -> int:
    statement = select(func.count()).select_from(Task)
    if owner is not None:
        statement = statement.where(Task.owner_id == uuid.UUID(owner.id))
    async with app.state.runtime.engine.connect() as connection:
        return int((await connection.execute(statement)).scalar())


async def expire_keys(app: Any, owner: Account, key: str | None = None) -> None:
    statement = update(IdempotencyKey).where(IdempotencyKey.owner_id == uuid.UUID(owner.id))
    if key is not None:
        statement = statement.where(IdempotencyKey.key == key)
    past = datetime.now(UTC) - timedelta(seconds=1)
    async with app.state.runtime.engine.begin() as connection:
        await connection.execute(statement.values(expires_at=past))


async def stored_keys(app: Any, owner: Account) -> list[str]:
    statement = select(IdempotencyKey.key).where(IdempotencyKey.owner_id == uuid.UUID(owner.id))
    async with app.state.runtime.engine.connect() as connection:
        return sorted((await connection.execute(statement)).scalars())


async def test_same_key_and_body_replays_the_first_answer(api: Api, client, app):
    alice = await api.account()
    body = {"title": "Pay rent", "priority": "high"}
    first = await post(client, alice, body, key="rent-1")
    second = await post(client, alice, body, key="rent-1")

    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert second.content == first.content
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["location"] == f"{TASKS}/{first.json()['id']}"
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers["content-type"].startswith("application/json")
    assert await task_count(app) == 1


async def test_many_retries_still_make_one_task(api: Api, client, app):
    alice = await api.account()
    answers = [await post(client, alice, {"title": "Once"}, key="k") for _ in range(4)]
    assert {a.json()["id"] for a in answers} == {answers[0].json()["id"]}
    assert [a.headers.get("idempotent-replayed") for a in answers] == [None] + ["true"] * 3
    assert await task_count(app) == 1


async def test_same_key_with_another_body_is_422_and_creates_nothing(api: Api, client, app):
    alice = await api.account()
    first = await post(client, alice, {"title": "One"}, key="k")
    assert first.status_code == 201
    response = await post(client, alice, {"title": "Two"}, key="k")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation_failed"
    assert await task_count(app) == 1
    # The key still belongs to the first request.
    again = await post(client, alice, {"title": "One"}, key="k")
    assert again.json()["id"] == first.json()["id"]


async def test_the_same_json_written_differently_is_the_same_body(api: Api, client, app):
    alice = await api.account()
    first = await post(client, alice, {"title": "Same", "priority": "low"}, key="k")
    reordered = json.dumps({"priority": "low", "title": "Same"}, indent=2).encode()
    response = await client.post(
        TASKS,
        content=reordered,
        headers={**alice.headers, "Idempotency-Key": "k", "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["idempotent-replayed"] == "true"
    assert response.json()["id"] == first.json()["id"]
    assert await task_count(app) == 1


async def test_different_keys_make_different_tasks(api: Api, client, app):
    alice = await api.account()
    one = await post(client, alice, {"title": "Same"}, key="a")
    two = await post(client, alice, {"title": "Same"}, key="b")
    assert one.json()["id"] != two.json()["id"]
    assert "idempotent-replayed" not in two.headers
    assert await task_count(app) == 2


async def test_without_a_key_every_post_creates(api: Api, client, app):
    alice = await api.account()
    for _ in range(2):
        assert (await post(client, alice, {"title": "Same"})).status_code == 201
    assert await task_count(app) == 2


async def test_keys_are_scoped_per_user(api: Api, client, app):
    alice, bob = await api.account(), await api.account()
    body = {"title": "Shared key"}
    mine = await post(client, alice, body, key="shared")
    theirs = await post(client, bob, body, key="shared")
    assert theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    assert await task_count(app, alice) == 1
    assert await task_count(app, bob) == 1
    # Bob can read his own task, and cannot read Alice's.
    own = await client.get(theirs.headers["location"], headers=bob.headers)
    assert own.status_code == 200
    other = await client.get(mine.headers["location"], headers=bob.headers)
    assert other.status_code == 404


async def test_another_users_different_body_is_not_a_conflict(api: Api, client):
    alice, bob = await api.account(), await api.account()
    assert (await post(client, alice, {"title": "A"}, key="k")).status_code == 201
    response = await post(client, bob, {"title": "B"}, key="k")
    assert response.status_code == 201
    assert response.json()["title"] == "B"


async def test_an_expired_key_no_longer_replays(api: Api, client, app):
    alice = await api.account()
    first = await post(client, alice, {"title": "Again"}, key="k")
    await expire_keys(app, alice, "k")
    second = await post(client, alice, {"title": "Again"}, key="k")
    assert second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    assert await task_count(app) == 2
    # The key now replays the new answer.
    third = await post(client, alice, {"title": "Again"}, key="k")
    assert third.headers["idempotent-replayed"] == "true"
    assert third.json()["id"] == second.json()["id"]


async def test_an_expired_key_may_be_reused_with_another_body(api: Api, client, app):
    alice = await api.account()
    await post(client, alice, {"title": "Old"}, key="k")
    await expire_keys(app, alice, "k")
    response = await post(client, alice, {"title": "New"}, key="k")
    assert response.status_code == 201
    assert response.json()["title"] == "New"


async def test_keys_expire_after_the_configured_time(api: Api, client, app):
    alice = await api.account()
    before = datetime.now(UTC)
    await post(client, alice, {"title": "t"}, key="k")
    async with app.state.runtime.engine.connect() as connection:
        expires = (await connection.execute(select(IdempotencyKey.expires_at))).scalar_one()
    ttl = timedelta(seconds=app.state.runtime.settings.idempotency_ttl_seconds)
    assert before + ttl <= expires <= datetime.now(UTC) + ttl


async def test_a_users_expired_keys_are_cleared_when_they_use_a_key(api: Api, client, app):
    alice, bob = await api.account(), await api.account()
    for key in ("a", "b"):
        await post(client, alice, {"title": key}, key=key)
    await post(client, bob, {"title": "x"}, key="a")
    await expire_keys(app, alice)
    await expire_keys(app, bob)
    await post(client, alice, {"title": "c"}, key="c")
    assert await stored_keys(app, alice) == ["c"]
    assert await stored_keys(app, bob) == ["a"]


async def test_a_rejected_request_does_not_use_up_the_key(api: Api, client, app):
    alice = await api.account()
    bad = await post(client, alice, {"title": ""}, key="k")
    assert bad.status_code == 422
    good = await post(client, alice, {"title": "Fixed"}, key="k")
    assert good.status_code == 201
    assert "idempotent-replayed" not in good.headers
    assert await task_count(app) == 1


@pytest.mark.parametrize("key", ["", "x" * 256])
async def test_key_length_is_checked(api: Api, client, app, key):
    alice = await api.account()
    response = await post(client, alice, {"title": "t"}, key=key)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"
    assert await task_count(app) == 0


async def test_a_key_of_255_characters_works(api: Api, client):
    alice = await api.account()
    key = "k" * 255
    first = await post(client, alice, {"title": "t"}, key=key)
    second = await post(client, alice, {"title": "t"}, key=key)
    assert first.status_code == 201
    assert second.json()["id"] == first.json()["id"]


async def test_concurrent_retries_make_one_task(api: Api, client, app):
    alice = await api.account()
    answers = await asyncio.gather(
        *(post(client, alice, {"title": "Race"}, key="race") for _ in range(5))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert set(statuses) <= {201, 409}, [a.text for a in answers]
    created = [a for a in answers if a.status_code == 201]
    assert len({a.json()["id"] for a in created}) == 1
    assert len([a for a in created if "idempotent-replayed" not in a.headers]) == 1
    for answer in answers:
        if answer.status_code == 409:
            assert answer.headers["content-type"].startswith("application/problem+json")
    assert await task_count(app) == 1


async def test_a_replay_needs_the_same_caller_signed_in(api: Api, client, app):
    alice = await api.account()
    await post(client, alice, {"title": "t"}, key="k")
    response = await client.post(TASKS, json={"title": "t"}, headers={"Idempotency-Key": "k"})
    assert response.status_code == 401
    assert await task_count(app) == 1
