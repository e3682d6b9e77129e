"""Warm task-list pages answered in front of the framework: the same answers, only sooner.

Each test runs on every database leg, with the in-process cache and with Redis. A request the
hot path answers never reaches the route (`FullPath` counts those that do), so each test can
tell which path answered and hold the hot one to the full one's behaviour.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from primetrade.tasks import service
from tests.conftest import asgi_client
from tests.helpers import API, Account, Api, assert_problem, bearer
from tests.redisserver import private_prefix, shared_redis_url

AppFactory = Callable[..., Awaitable[FastAPI]]


class FullPath:
    """Counts the list requests that reached the route (the hot path answers the others)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = service.list_page

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return await original(*args, **kwargs)

        monkeypatch.setattr(service, "list_page", counted)


@pytest.fixture
def full_path(monkeypatch: pytest.MonkeyPatch) -> FullPath:
    return FullPath(monkeypatch)


@pytest.fixture(params=["memory", "redis"])
async def store_overrides(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    """Settings for an app caching in-process, or in (a private key space of) Redis."""
    if request.param == "memory":
        yield {}
        return
    for prefix in private_prefix():
        # The counts below need every Redis read to succeed: a command slowed past the default
        # half second by a busy test machine would open the breaker and send reads to the
        # full path, as it should in production. Outages are tested in test_shared_state.
        yield {"redis_url": shared_redis_url(), "redis_prefix": prefix, "redis_timeout_seconds": 5}


@pytest.fixture
async def http(
    app_factory: AppFactory, store_overrides: dict[str, Any]
) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(await app_factory(**store_overrides)) as client:
        yield client


async def listed(http: httpx.AsyncClient, who: Account, query: str = "", **headers: str) -> Any:
    return await http.get(f"{API}/tasks{query}", headers={**who.headers, **headers})


def comparable(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {k: v for k, v in response.headers.items() if k != "x-request-id"}
    return response.status_code, headers, response.content


def counted(cache: str) -> float:
    labels = {"cache": cache, "result": "hit"}
    return REGISTRY.get_sample_value("cache_requests_total", labels) or 0.0


def served(route: str, status: str) -> float:
    labels = {"route": route, "method": "GET", "status": status}
    return REGISTRY.get_sample_value("http_request_duration_seconds_count", labels) or 0.0


async def test_a_warm_page_is_answered_as_the_full_path_answers_it(
    http: httpx.AsyncClient, full_path: FullPath
) -> None:
    alice = await Api(http).account()
    for n in range(12):  # a page larger than gzip's threshold: compressed on both paths
        await Api(http).create_task(alice, title=f"Task {n}", tags=["work"])
    for query in ("", "?limit=5&sort=title&tag=work", "?status=todo&status=in_progress"):
        calls = full_path.calls
        first, second = await listed(http, alice, query), await listed(http, alice, query)
        assert full_path.calls == calls + 1, "the second request is answered by the hot path"
        assert first.status_code == 200, first.text
        assert comparable(second) == comparable(first)
        assert second.headers["x-request-id"] != first.headers["x-request-id"]
    assert first.headers["content-encoding"] == "gzip"
    assert first.headers["x-content-type-options"] == "nosniff"


async def test_if_none_match_gets_304_from_the_hot_path(
    http: httpx.AsyncClient, full_path: FullPath
) -> None:
    alice = await Api(http).account()
    await Api(http).create_task(alice)
    tag = (await listed(http, alice)).headers["etag"]
    calls = full_path.calls
    unchanged = await listed(http, alice, **{"If-None-Match": f'"other", {tag}'})
    other = await listed(http, alice, **{"If-None-Match": '"other"'})
    assert (unchanged.status_code, unchanged.content, unchanged.headers["etag"]) == (304, b"", tag)
    assert (other.status_code, other.headers["etag"]) == (200, tag)
    assert full_path.calls == calls


async def test_head_is_answered_by_the_hot_path_without_a_body(
    http: httpx.AsyncClient, full_path: FullPath
) -> None:
    alice = await Api(http).account()
    await Api(http).create_task(alice)
    got = await listed(http, alice)
    calls = full_path.calls
    head = await http.head(f"{API}/tasks", headers=alice.headers)
    assert (head.status_code, head.content, head.headers["etag"]) == (200, b"", got.headers["etag"])
    assert full_path.calls == calls


async def test_a_write_is_seen_by_the_next_read(
    http: httpx.AsyncClient, full_path: FullPath
) -> None:
    alice = await Api(http).account()
    task = await Api(http).create_task(alice, title="Before")
    for _ in range(2):
        await listed(http, alice)
    changed = await http.patch(
        f"{API}/tasks/{task['id']}", json={"title": "After"}, headers=alice.headers
    )
    assert changed.status_code == 200
    calls = full_path.calls
    assert [t["title"] for t in (await listed(http, alice)).json()["items"]] == ["After"]
    assert full_path.calls == calls + 1  # the page was stale: built again by the full path
    await Api(http).create_task(alice, title="New")
    assert [t["title"] for t in (await listed(http, alice)).json()["items"]] == ["New", "After"]


async def test_the_same_query_string_never_serves_another_users_page(
    http: httpx.AsyncClient, full_path: FullPath
) -> None:
    alice, bob = await Api(http).account(), await Api(http).account()
    await Api(http).create_task(alice, title="Alice's")
    await Api(http).create_task(bob, title="Bob's")
    for _ in range(2):
        for who, title in ((alice, "Alice's"), (bob, "Bob's")):
            items = (await listed(http, who, "?limit=10")).json()["items"]
            assert [item["title"] for item in items] == [title]
    assert full_path.calls == 2  # one page each, then both from the hot path


async def test_a_token_that_no_longer_lets_in_is_refused_as_before(
    http: httpx.AsyncClient, full_path: FullPath
) -> None:
    alice = await Api(http).account()
    for _ in range(2):
        assert (await listed(http, alice)).status_code == 200
    header, payload, _signature = alice.access_token.split(".")
    forged = f"{header}.{payload}.{'A' * 43}"
    for headers in (
        {},
        bearer(forged),
        {"Authorization": f"Basic {alice.access_token}"},
        {"Authorization": f"Bearer{alice.access_token}"},
    ):
        assert_problem(await http.get(f"{API}/tasks", headers=headers), 401)

    logout = await http.post(
        f"{API}/auth/logout", json={"refresh_token": alice.refresh_token}, headers=alice.headers
    )
    assert logout.status_code == 204
    assert_problem(await listed(http, alice), 401)


async def test_hot_answers_are_counted_under_the_list_route(
    http: httpx.AsyncClient, full_path: FullPath
) -> None:
    alice = await Api(http).account()
    await listed(http, alice)
    route = f"{API}/tasks"
    before = (served(route, "200"), counted("task_list"), counted("principal"))
    assert (await listed(http, alice)).status_code == 200
    assert full_path.calls == 1
    assert (served(route, "200"), counted("task_list"), counted("principal")) == tuple(
        value + 1 for value in before
    )


async def test_rate_limits_count_hot_answers(
    app_factory: AppFactory, store_overrides: dict[str, Any], full_path: FullPath
) -> None:
    application = await app_factory(
        **store_overrides, rate_limit_enabled=True, rate_limit_user="3/day"
    )
    async with asgi_client(application) as http:
        alice = await Api(http).account()
        answers = [await listed(http, alice) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["ratelimit-remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert full_path.calls == 1


async def test_an_invalid_query_is_refused_every_time(
    http: httpx.AsyncClient, full_path: FullPath
) -> None:
    alice = await Api(http).account()
    for _ in range(2):
        assert_problem(await listed(http, alice, "?limit=0"), 422)
        assert_problem(await listed(http, alice, "?cursor=forged"), 400)
    assert full_path.calls == 2  # the 422s never reached the service
