"""Read replicas on a real streaming replica of a private primary (tests/pgserver.py).

Safe requests read from the replica, a writer reads their own write from the primary, a
replica that dies under a running app costs no request an error, and lag and health show in
/metrics and /ready. Pausing the replica's WAL replay is what makes "read from the replica"
visible: the replica keeps showing the old row while the primary has the new one.

Every test runs twice: with the app reaching both servers directly, and through a PgBouncer
(transaction pooling) in front of each, where a dead replica shows as an error from PgBouncer
rather than a refused connection.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import asyncpg
import httpx
import orjson
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from primetrade.app import create_app
from primetrade.auth import tokens
from primetrade.bootstrap import ensure_admin
from primetrade.kit.db import session_scope, utcnow
from primetrade.kit.redisstore import RedisStore
from primetrade.kit.replicas import MemoryRecentWriters, RedisRecentWriters
from primetrade.migrations import upgrade
from primetrade.tasks import service as tasks_service
from primetrade.users import service as users_service
from tests import pgserver, redisserver
from tests.conftest import IN_CI, asgi_client, make_settings, truncate_all
from tests.helpers import API, PASSWORD, Account, Api
from tests.pgbouncer import PrivateBouncer
from tests.pgbouncer import unavailable_reason as pgbouncer_unavailable

T = TypeVar("T")
HANG_GUARD_SECONDS = 20  # a stuck request or replay fails the test instead of hanging the run


@dataclass(frozen=True)
class Cluster:
    """The private servers, and the URLs the app reaches them by (directly or via PgBouncer)."""

    primary: pgserver.PrivateServer
    replica: pgserver.PrivateServer
    primary_url: str
    replica_url: str


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[pgserver.PrivateServer, pgserver.PrivateServer]]:
    """A migrated private primary and a streaming replica of it, both deleted afterwards."""
    reason = pgserver.unavailable_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI needs private PostgreSQL servers: {reason}")
        pytest.skip(f"SKIPPED primary and replica: {reason}")
    primary = pgserver.PrivateServer.create()
    replica: pgserver.PrivateServer | None = None
    try:
        primary.start()
        upgrade(primary.url)
        replica = pgserver.PrivateServer.replica_of(primary)
        replica.start()
        yield primary, replica
    finally:
        if replica is not None:
            replica.destroy()
        primary.destroy()


@pytest.fixture(scope="module", params=["direct", "pgbouncer"])
def cluster(
    request: pytest.FixtureRequest,
    servers: tuple[pgserver.PrivateServer, pgserver.PrivateServer],
) -> Iterator[Cluster]:
    """The servers reached directly, then each through its own PgBouncer (transaction mode)."""
    primary, replica = servers
    if request.param == "direct":
        yield Cluster(primary, replica, primary.url, replica.url)
        return
    reason = pgbouncer_unavailable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI needs PgBouncer: {reason}")
        pytest.skip(f"SKIPPED replicas through PgBouncer: {reason}")
    bouncers = [PrivateBouncer(server.url) for server in servers]
    try:
        for bouncer in bouncers:
            bouncer.start()
        bounced = [b.url_for(s.url) for b, s in zip(bouncers, servers, strict=True)]
        yield Cluster(primary, replica, *bounced)
    finally:
        for bouncer in bouncers:
            bouncer.stop()


async def bounded(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, HANG_GUARD_SECONDS)


async def sql(server: pgserver.PrivateServer, query: str, *args: Any) -> Any:
    connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{server.port}/postgres")
    try:
        return await connection.fetchval(query, *args)
    finally:
        await connection.close()


async def caught_up(primary: pgserver.PrivateServer, replica: pgserver.PrivateServer) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    lsn = await sql(primary, "SELECT pg_current_wal_lsn()::text")

    async def replayed() -> None:
        query = "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn"
        while True:
            if await sql(replica, query, lsn):
                return
            await asyncio.sleep(0.02)

    await bounded(replayed())


@asynccontextmanager
async def replicated_app(cluster: Cluster) -> AsyncIterator[FastAPI]:
    # Probes only when a test asks (`check()`), so a probe never changes the routing mid-test.
    settings = make_settings(
        cluster.primary_url, read_database_urls=[cluster.replica_url], db_replica_check_seconds=3600
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        try:
            yield application
        finally:
            await truncate_all(application)


async def settled(
    application: FastAPI, primary: pgserver.PrivateServer, replica: pgserver.PrivateServer
) -> None:
    """Everything written so far replayed on the replica, and nobody a recent writer."""
    await caught_up(primary, replica)
    runtime = application.state.runtime
    runtime.recent_writers = MemoryRecentWriters(runtime.settings.read_your_writes_seconds)


@asynccontextmanager
async def replay_paused(replica: pgserver.PrivateServer) -> AsyncIterator[None]:
    """The replica keeps what it has but replays nothing more until the block ends."""
    await sql(replica, "SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        await sql(replica, "SELECT pg_wal_replay_resume()")


@contextmanager
def signed_in_a_minute_ago(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tokens minted inside this block look a minute old: past the read-your-writes window."""
    with monkeypatch.context() as patch:
        patch.setattr(tokens, "utcnow", lambda: utcnow() - timedelta(minutes=1))
        yield


async def admin_account(application: FastAPI, api: Api, cluster: Cluster) -> Account:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    assert await ensure_admin(application.state.runtime.settings, email, PASSWORD, None)
    response = await api.login(email)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    # The token looks old enough for replica reads: the replica must hold its session first.
    await caught_up(cluster.primary, cluster.replica)
    headers = {"Authorization": f"Bearer {token}"}
    me = await api.client.get(f"{API}/users/me", headers=headers)
    return Account(me.json()["id"], email, PASSWORD, token, "", headers)


def metric(text: str, name: str, replica: str, default: float | None = None) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("replica") == replica:
                return float(sample.value)
    assert default is not None, f"{name}{{replica={replica!r}}} is not in /metrics"
    return default


async def title_seen(client: httpx.AsyncClient, who: Account, task_id: str) -> str:
    response = await bounded(client.get(f"{API}/admin/tasks/{task_id}", headers=who.headers))
    assert response.status_code == 200, response.text
    title: str = response.json()["title"]
    return title


@pytest.mark.postgres
async def test_reads_go_to_the_replica_and_a_writer_reads_their_own_write(
    cluster: Cluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    primary, replica = cluster.primary, cluster.replica
    async with replicated_app(cluster) as application, asgi_client(application) as client:
        api, runtime = Api(client), application.state.runtime
        with signed_in_a_minute_ago(monkeypatch):
            owner = await api.account()
            writer = await admin_account(application, api, cluster)
            reader = await admin_account(application, api, cluster)
        task = await api.create_task(owner, title="Before")
        await settled(application, primary, replica)
        name = runtime.replicas.replicas[0].name

        async with replay_paused(replica):
            response = await client.patch(
                f"{API}/admin/tasks/{task['id']}", json={"title": "After"}, headers=writer.headers
            )
            assert response.status_code == 200, response.text
            assert await title_seen(client, writer, task["id"]) == "After"  # from the primary
            assert await title_seen(client, reader, task["id"]) == "Before"  # from the replica

            await runtime.replicas.check()
            scraped = (await client.get("/metrics")).text
            assert metric(scraped, "db_replica_up", name) == 1
            assert metric(scraped, "db_replica_lag_seconds", name) > 0

        await caught_up(primary, replica)
        await runtime.replicas.check()
        assert metric((await client.get("/metrics")).text, "db_replica_lag_seconds", name) == 0
        assert await title_seen(client, reader, task["id"]) == "After"
        ready = await client.get("/ready")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "checks": {"database": "ok", "replicas": {name: "ok"}},
        }


@pytest.mark.postgres
async def test_an_owner_sees_an_admins_change_to_their_task_at_once(
    cluster: Cluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The owner did not write, but their cache was invalidated: the refill is from the primary.

    Otherwise the owner's next read would refill the cache from the lagging replica and keep
    serving the old title under the new version until the entry expired.
    """
    primary, replica = cluster.primary, cluster.replica
    async with replicated_app(cluster) as application, asgi_client(application) as client:
        api = Api(client)
        with signed_in_a_minute_ago(monkeypatch):
            owner = await api.account()
            admin = await admin_account(application, api, cluster)
        task = await api.create_task(owner, title="Before")
        await settled(application, primary, replica)
        mine = f"{API}/tasks/{task['id']}"
        assert (await client.get(mine, headers=owner.headers)).json()["title"] == "Before"

        async with replay_paused(replica):
            response = await client.patch(
                f"{API}/admin/tasks/{task['id']}", json={"title": "After"}, headers=admin.headers
            )
            assert response.status_code == 200, response.text
            for path in (mine, f"{API}/tasks"):
                seen = (await bounded(client.get(path, headers=owner.headers))).json()
                titles = [seen["title"]] if "title" in seen else [t["title"] for t in seen["items"]]
                assert titles == ["After"], path


@pytest.mark.postgres
async def test_a_read_that_chose_the_replica_before_a_write_never_caches_the_old_row(
    cluster: Cluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reader's session opens on the replica; the owner's task then changes elsewhere.

    The cache lookup that follows sees the new version. Filling it from the lagging replica
    would keep the old title under the new version for the whole TTL.
    """
    primary, replica = cluster.primary, cluster.replica
    async with replicated_app(cluster) as application, asgi_client(application) as client:
        api, runtime = Api(client), application.state.runtime
        with signed_in_a_minute_ago(monkeypatch):
            owner = await api.account()
            admin = await admin_account(application, api, cluster)
        task = await api.create_task(owner, title="Before")
        await settled(application, primary, replica)
        replica_sessions = runtime.replicas.sessions()
        assert replica_sessions is not None

        async with replay_paused(replica), session_scope(replica_sessions) as session:
            user = await users_service.get(session, uuid.UUID(owner.id))  # read on the replica
            response = await client.patch(
                f"{API}/admin/tasks/{task['id']}", json={"title": "After"}, headers=admin.headers
            )
            assert response.status_code == 200, response.text
            entry = await tasks_service.read_one(session, runtime, user, uuid.UUID(task["id"]))
            assert orjson.loads(entry.body)["title"] == "After"
            mine = await bounded(client.get(f"{API}/tasks/{task['id']}", headers=owner.headers))
            assert mine.json()["title"] == "After"


@pytest.mark.postgres
async def test_a_reused_refresh_token_sends_its_owner_to_the_primary(
    cluster: Cluster,
) -> None:
    """The revoked session must not be refilled into the cache from a lagging replica."""
    primary, replica = cluster.primary, cluster.replica
    async with replicated_app(cluster) as application, asgi_client(application) as client:
        api, runtime = Api(client), application.state.runtime
        owner = await api.account()
        first = await client.post(
            f"{API}/auth/refresh", json={"refresh_token": owner.refresh_token}
        )
        assert first.status_code == 200, first.text
        await settled(application, primary, replica)
        assert not await runtime.recent_writers.is_recent(owner.id)

        again = await client.post(
            f"{API}/auth/refresh", json={"refresh_token": owner.refresh_token}
        )
        assert again.status_code == 401
        assert await runtime.recent_writers.is_recent(owner.id)


@pytest.mark.postgres
async def test_a_fresh_sign_in_reads_from_the_primary(
    cluster: Cluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    primary, replica = cluster.primary, cluster.replica
    async with replicated_app(cluster) as application, asgi_client(application) as client:
        api = Api(client)
        with signed_in_a_minute_ago(monkeypatch):
            reader = await admin_account(application, api, cluster)
        await caught_up(primary, replica)
        async with replay_paused(replica):
            # The sign-in's session row exists only on the primary, and its token is fresh.
            fresh = await api.account()
            assert (await client.get(f"{API}/users/me", headers=fresh.headers)).status_code == 200
            # The replica, which an older token reads from, has not seen that account yet.
            listed = await client.get(f"{API}/admin/users/{fresh.id}", headers=reader.headers)
            assert listed.status_code == 404


@pytest.mark.postgres
async def test_a_replica_stopped_mid_run_costs_no_request_an_error(
    cluster: Cluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    primary, replica = cluster.primary, cluster.replica
    async with replicated_app(cluster) as application, asgi_client(application) as client:
        api, runtime = Api(client), application.state.runtime
        with signed_in_a_minute_ago(monkeypatch):
            reader = await admin_account(application, api, cluster)
        task = await api.create_task(reader, title="Survives")
        await settled(application, primary, replica)
        name = runtime.replicas.replicas[0].name
        # Several pooled replica connections, every one of which dies with the server.
        reads = [title_seen(client, reader, task["id"]) for _ in range(4)]
        assert await bounded(asyncio.gather(*reads)) == ["Survives"] * 4

        fallbacks = "db_replica_fallbacks_total"
        before = metric((await client.get("/metrics")).text, fallbacks, name, default=0)
        await asyncio.to_thread(replica.stop, "immediate")
        try:
            for _ in range(5):
                assert await title_seen(client, reader, task["id"]) == "Survives"
            # The pooled connection broke under a request, which the primary then served.
            after_broken = metric((await client.get("/metrics")).text, fallbacks, name)
            assert after_broken == before + 1
            # A new instance holds no broken connection: it fails to connect, then falls back.
            # (Without its lifespan, so no probe finds the replica down before the request.)
            other = create_app(application.state.runtime.settings)
            try:
                async with asgi_client(other) as other_client:
                    assert await title_seen(other_client, reader, task["id"]) == "Survives"
            finally:
                await other.state.runtime.close()
            assert metric((await client.get("/metrics")).text, fallbacks, name) == before + 2

            await runtime.replicas.check()
            assert metric((await client.get("/metrics")).text, "db_replica_up", name) == 0
            ready = await client.get("/ready")
            assert ready.status_code == 200
            assert ready.json()["status"] == "degraded"
            assert ready.json()["checks"]["replicas"] == {name: "down"}
        finally:
            await asyncio.to_thread(replica.start)
        await caught_up(primary, replica)
        # The next probe finds it back (through PgBouncer, once its login retry pause is over).
        await bounded(back_in_rotation(application, client))
        assert await title_seen(client, reader, task["id"]) == "Survives"


async def back_in_rotation(application: FastAPI, client: httpx.AsyncClient) -> None:
    while True:
        await application.state.runtime.replicas.check()
        if (await client.get("/ready")).json()["status"] == "ready":
            return
        await asyncio.sleep(0.2)


# --- The read-your-writes marker ------------------------------------------------------------


async def test_the_in_process_marker_remembers_writers_for_its_window() -> None:
    writers = MemoryRecentWriters(60)
    await writers.mark("alice")
    assert await writers.is_recent("alice")
    assert not await writers.is_recent("bob")
    closed = MemoryRecentWriters(0)
    await closed.mark("alice")
    assert not await closed.is_recent("alice")


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    redisserver.shared_redis_url()
    yield from redisserver.private_prefix()


async def test_a_mark_made_on_one_instance_is_seen_by_another(redis_prefix: str) -> None:
    stores = [
        RedisStore(redisserver.REDIS_URL, prefix=redis_prefix, timeout=1, breaker_seconds=5)
        for _ in range(2)
    ]
    try:
        here, there = (RedisRecentWriters(store, 60) for store in stores)
        await here.mark("alice")
        assert await there.is_recent("alice")
        assert not await there.is_recent("bob")
    finally:
        for store in stores:
            await store.close()
