"""Many instances as one: two apps over one database and one Redis, and Redis going away."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import event

from primetrade.bootstrap import ensure_admin
from tests.conftest import asgi_client
from tests.helpers import API, PASSWORD, Account, Api
from tests.redisserver import PrivateRedis, private_prefix, shared_redis_url

AppFactory = Callable[..., Awaitable[FastAPI]]


@pytest.fixture(scope="session")
def redis_url() -> str:
    return shared_redis_url()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    yield from private_prefix()


@pytest.fixture
async def two(
    app_factory: AppFactory, redis_url: str, redis_prefix: str
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Clients of two instances sharing the database and Redis."""
    first = await app_factory(redis_url=redis_url, redis_prefix=redis_prefix)
    second = await app_factory(redis_url=redis_url, redis_prefix=redis_prefix)
    async with asgi_client(first) as a, asgi_client(second) as b:
        a.app = first  # type: ignore[attr-defined]
        b.app = second  # type: ignore[attr-defined]
        yield a, b


def counted(cache: str, result: str) -> float:
    value = REGISTRY.get_sample_value("cache_requests_total", {"cache": cache, "result": result})
    return value or 0.0


@contextmanager
def database_checkouts(application: FastAPI) -> Iterator[list[object]]:
    """Every connection the requests made meanwhile take from `application`'s pool.

    Only checkouts on the caller's own task count (the test client runs the app there): the
    app's background work (the outbox relay polling) has tasks of its own.
    """
    pool = application.state.runtime.engine.sync_engine.pool
    taken: list[object] = []
    caller = asyncio.current_task()

    def on_checkout(*_args: Any) -> None:
        if asyncio.current_task() is caller:
            taken.append(object())

    event.listen(pool, "checkout", on_checkout)
    try:
        yield taken
    finally:
        event.remove(pool, "checkout", on_checkout)


async def get(client: httpx.AsyncClient, who: Account, path: str, **headers: str) -> httpx.Response:
    return await client.get(f"{API}{path}", headers={**who.headers, **headers})


async def patch(client: httpx.AsyncClient, who: Account, path: str, body: Any) -> httpx.Response:
    response = await client.patch(f"{API}{path}", json=body, headers=who.headers)
    assert response.status_code == 200, response.text
    return response


async def test_a_write_on_one_instance_is_read_fresh_on_the_other(
    two: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = two
    alice = await Api(a).account()
    task = await Api(a).create_task(alice, title="Old title")
    reads = ["/tasks", f"/tasks/{task['id']}", "/tasks/stats", "/users/me"]
    hits_before = counted("task_list", "hit") + counted("principal", "hit")
    for _ in range(2):
        for path in reads:
            assert (await get(b, alice, path)).status_code == 200
    assert counted("task_list", "hit") + counted("principal", "hit") > hits_before

    await patch(a, alice, f"/tasks/{task['id']}", {"title": "New title"})
    await patch(a, alice, "/users/me", {"full_name": "Alice Renamed"})
    await Api(a).create_task(alice, title="Second")

    listed = (await get(b, alice, "/tasks")).json()["items"]
    assert [item["title"] for item in listed] == ["Second", "New title"]
    assert (await get(b, alice, f"/tasks/{task['id']}")).json()["title"] == "New title"
    assert (await get(b, alice, "/tasks/stats")).json()["total"] == 2
    assert (await get(b, alice, "/users/me")).json()["full_name"] == "Alice Renamed"


async def test_a_cached_read_never_serves_another_users_data(
    two: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = two
    alice, bob = await Api(a).account(), await Api(a).account()
    task = await Api(a).create_task(alice, title="Alice's")
    for _ in range(2):
        assert (await get(b, alice, "/tasks")).json()["items"][0]["title"] == "Alice's"
        assert (await get(b, alice, f"/tasks/{task['id']}")).status_code == 200
    assert (await get(b, bob, "/tasks")).json()["items"] == []
    assert (await get(b, bob, f"/tasks/{task['id']}")).status_code == 404
    assert (await get(b, bob, "/users/me")).json()["email"] == bob.email


async def test_if_none_match_is_answered_304_without_the_database(
    two: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = two
    alice = await Api(a).account()
    task = await Api(a).create_task(alice, title="Watched")
    listed = await get(b, alice, "/tasks")
    one = await get(b, alice, f"/tasks/{task['id']}")
    list_tag, task_tag = listed.headers["etag"], one.headers["etag"]
    assert list_tag.startswith('W/"')
    assert task_tag == '"v1"'
    with database_checkouts(b.app) as taken:  # type: ignore[attr-defined]
        unchanged_list = await get(b, alice, "/tasks", **{"If-None-Match": list_tag})
        unchanged_task = await get(b, alice, f"/tasks/{task['id']}", **{"If-None-Match": task_tag})
    assert (unchanged_list.status_code, unchanged_task.status_code) == (304, 304)
    assert unchanged_list.headers["etag"] == list_tag
    assert taken == []

    await patch(a, alice, f"/tasks/{task['id']}", {"title": "Changed elsewhere"})
    changed_list = await get(b, alice, "/tasks", **{"If-None-Match": list_tag})
    changed_task = await get(b, alice, f"/tasks/{task['id']}", **{"If-None-Match": task_tag})
    assert (changed_list.status_code, changed_task.status_code) == (200, 200)
    assert changed_list.headers["etag"] != list_tag
    assert changed_task.headers["etag"] == '"v2"'
    assert changed_list.json()["items"][0]["title"] == "Changed elsewhere"


async def test_a_logout_on_one_instance_is_refused_on_the_other_at_once(
    two: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = two
    alice = await Api(a).account()
    for _ in range(2):
        assert (await get(b, alice, "/users/me")).status_code == 200
    response = await a.post(
        f"{API}/auth/logout", json={"refresh_token": alice.refresh_token}, headers=alice.headers
    )
    assert response.status_code == 204
    assert (await get(b, alice, "/users/me")).status_code == 401
    assert (await get(b, alice, "/tasks")).status_code == 401


async def test_demotion_and_deactivation_take_effect_on_the_other_instance_at_once(
    two: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = two
    settings = a.app.state.runtime.settings  # type: ignore[attr-defined]
    root, other = await Api(a).account(), await Api(a).account()
    alice = await Api(a).account()
    for admin in (root, other):
        assert await ensure_admin(settings, admin.email, PASSWORD, None) is False
    for _ in range(2):
        assert (await get(b, root, "/admin/users")).status_code == 200
        assert (await get(b, alice, "/users/me")).status_code == 200

    await patch(a, other, f"/admin/users/{root.id}", {"role": "user"})
    assert (await get(b, root, "/admin/users")).status_code == 403
    await patch(a, other, f"/admin/users/{alice.id}", {"is_active": False})
    assert (await get(b, alice, "/users/me")).status_code == 401


async def test_a_rate_limit_allows_exactly_its_budget_across_instances(
    app_factory: AppFactory, redis_url: str, redis_prefix: str
) -> None:
    limited = {
        "redis_url": redis_url,
        "redis_prefix": redis_prefix,
        "rate_limit_enabled": True,
        "rate_limit_user": "5/day",
    }
    first, second = await app_factory(**limited), await app_factory(**limited)
    async with asgi_client(first) as a, asgi_client(second) as b:
        alice = await Api(a).account()
        answers = [(await get(http, alice, "/tasks")).status_code for http in [a, b] * 4]
    assert answers.count(200) == 5
    assert answers.count(429) == 3


async def test_an_idempotency_key_replays_on_another_instance(
    two: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = two
    alice = await Api(a).account()
    headers = {**alice.headers, "Idempotency-Key": uuid.uuid4().hex}
    first = await a.post(f"{API}/tasks", json={"title": "Once"}, headers=headers)
    again = await b.post(f"{API}/tasks", json={"title": "Once"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert len((await get(b, alice, "/tasks")).json()["items"]) == 1


async def test_without_redis_the_database_serves_and_everything_recovers(
    app_factory: AppFactory, private_redis: PrivateRedis
) -> None:
    application = await app_factory(
        redis_url=private_redis.url,
        redis_breaker_seconds=0,  # probe on every call, so recovery needs no waiting here
        rate_limit_enabled=True,
        rate_limit_user="1000/hour",
        rate_limit_anonymous="1000/hour",
    )
    async with asgi_client(application) as http:
        alice = await Api(http).account()
        task = await Api(http).create_task(alice, title="Before")
        await get(http, alice, "/tasks")
        assert (await http.get("/ready")).json() == {
            "status": "ready",
            "checks": {"database": "ok", "redis": "ok"},
        }

        private_redis.stop()
        listed = await get(http, alice, "/tasks")
        assert listed.status_code == 200  # from the database; the general limit fails open
        assert "ratelimit-limit" not in listed.headers
        await patch(http, alice, f"/tasks/{task['id']}", {"title": "During"})
        assert (await get(http, alice, f"/tasks/{task['id']}")).json()["title"] == "During"
        login = await Api(http).login(alice.email)
        assert login.status_code == 503
        assert login.json()["code"] == "rate_limit_unavailable"
        assert int(login.headers["retry-after"]) >= 1
        ready = await http.get("/ready")
        assert ready.status_code == 200
        assert ready.json() == {"status": "degraded", "checks": {"database": "ok", "redis": "down"}}

        private_redis.start()
        assert (await get(http, alice, "/tasks")).json()["items"][0]["title"] == "During"
        hits = counted("task_list", "hit")
        assert (await get(http, alice, "/tasks")).status_code == 200
        assert counted("task_list", "hit") == hits + 1
        assert (await Api(http).login(alice.email)).status_code == 200
        assert (await http.get("/ready")).json()["status"] == "ready"
