"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from TEST_POSTGRES_URL (default: the local server's `test` database); each
run makes a private database beside it and drops it afterwards, so runs never collide. When
PostgreSQL cannot be reached the PostgreSQL legs are skipped with the reason, except under CI
(CI=true), where a missing server fails the run.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from primetrade.app import create_app
from primetrade.kit.db import Base
from primetrade.migrations import upgrade
from primetrade.models import load_all
from primetrade.settings import Settings
from tests.helpers import Api
from tests.pgbouncer import PrivateBouncer
from tests.pgbouncer import unavailable_reason as pgbouncer_unavailable
from tests.redisserver import PrivateRedis
from tests.redisserver import unavailable_reason as redis_unavailable_reason

POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
# Every database fixture has a third leg: the same PostgreSQL server through PgBouncer in
# transaction pooling mode, so the whole PostgreSQL suite also runs through it.
# TEST_PGBOUNCER=0 keeps only the modules below on that leg, which cover every kind of
# statement the app sends (reads, write transactions, locks and their timeouts, idempotent
# replays, sign-in): a quicker loop while developing.
DATABASE_LEGS = [
    *ENGINES,
    pytest.param("pgbouncer", marks=[pytest.mark.postgres, pytest.mark.pgbouncer]),
]
PGBOUNCER_MODULES = frozenset(
    {"test_tasks_crud", "test_tasks_list", "test_idempotency", "test_auth", "test_pgbouncer"}
)
WHOLE_SUITE_THROUGH_PGBOUNCER = os.environ.get("TEST_PGBOUNCER", "1").lower() not in {
    "0",
    "false",
    "no",
}
load_all()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "pgbouncer: runs through a private PgBouncer")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if WHOLE_SUITE_THROUGH_PGBOUNCER:
        return
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        legs = list(callspec.params.values()) if callspec is not None else []
        module = item.module.__name__.rpartition(".")[2] if item.module else ""
        through_pgbouncer = "pgbouncer" in legs and module not in PGBOUNCER_MODULES
        (dropped if through_pgbouncer else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    # Without the query: SQLAlchemy's driver options (`prepared_statement_cache_size`) mean
    # nothing to a plain asyncpg connection.
    parsed = make_url(url).set(drivername="postgresql", query={})
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _postgres_database(name: str, *, drop: bool) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=5)
    try:
        if drop:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def _postgres_unavailable() -> str | None:
    try:
        asyncio.run(_ping_postgres())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL at {make_url(POSTGRES_URL).render_as_string()} unreachable: {exc}"
    return None


async def _ping_postgres() -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=3)
    await connection.close()


@pytest.fixture(scope="session")
def postgres_base_url() -> Iterator[str]:
    """A private PostgreSQL database for this run, migrated; dropped at the end."""
    reason = _postgres_unavailable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI needs PostgreSQL: {reason}")
        pytest.skip(f"SKIPPED PostgreSQL leg: {reason}")
    name = f"primetrade_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_postgres_database(name, drop=False))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        asyncio.run(_postgres_database(name, drop=True))


@pytest.fixture(scope="session")
def pgbouncer(postgres_base_url: str) -> Iterator[PrivateBouncer]:
    """A private PgBouncer (transaction pooling) in front of the test server, every database."""
    reason = pgbouncer_unavailable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI needs PgBouncer: {reason}")
        pytest.skip(f"SKIPPED PgBouncer leg: {reason}")
    bouncer = PrivateBouncer(postgres_base_url)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture(scope="session")
def pgbouncer_url(postgres_base_url: str, pgbouncer: PrivateBouncer) -> str:
    """This run's PostgreSQL database, migrated, through the private PgBouncer."""
    upgrade(postgres_base_url)
    return pgbouncer.url_for(postgres_base_url)


@pytest.fixture(scope="session", params=DATABASE_LEGS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of a migrated database on each engine (and through PgBouncer)."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "primetrade.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_base_url")
    upgrade(url)
    if request.param == "pgbouncer":
        return str(request.getfixturevalue("pgbouncer_url"))
    return url


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "environment": "test",
        "rate_limit_enabled": False,
        "access_log": False,
        "log_level": "WARNING",
        "secret_key": "test-secret-key-0123456789abcdef0123456789",
        # Argon2id at its lowest cost: thousands of sign-ups and sign-ins per run, each ~1 ms
        # instead of ~25 ms. The default profile is tested in test_auth and every served app.
        "password_hash_time_cost": 1,
        "password_hash_memory_kib": 1024,
        # Registration sends mail: to the log, never into the working directory.
        "mail_url": "console://",
        # Export files of the shared apps: the temporary directory, not the checkout.
        "export_dir": str(Path(tempfile.gettempdir()) / "primetrade-test-exports"),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(database_url))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(autouse=True)
async def _clean_tables(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Each test starts from empty tables (faster than re-migrating, as real as it gets)."""
    yield
    if "app" not in request.fixturenames:
        return
    application: FastAPI = request.getfixturevalue("app")
    await truncate_all(application)


async def truncate_all(application: FastAPI) -> None:
    engine = application.state.runtime.engine
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    # The app's background work (the outbox relay) keeps reading these tables; on PostgreSQL
    # TRUNCATE's exclusive locks can deadlock with such a read, and the server then cancels
    # one side. The read is retried by the relay; the TRUNCATE is retried here.
    for attempt in range(5):
        try:
            async with engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    await connection.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
                else:
                    for name in tables:
                        await connection.execute(text(f"DELETE FROM {name}"))
            return
        except DBAPIError as exc:
            if attempt == 4 or "deadlock" not in str(exc).lower():
                raise


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    return Api(client)


@pytest.fixture
def engine_name(database_url: str) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


# --- Extra apps, clients and databases for the cross-cutting tests -------------------------


def asgi_client(
    application: FastAPI,
    *,
    peer: tuple[str, int] = ("127.0.0.1", 40000),
    base_url: str = "http://testserver",
) -> httpx.AsyncClient:
    """A client for `application` whose requests come from `peer` (the direct TCP peer)."""
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False, client=peer)
    return httpx.AsyncClient(transport=transport, base_url=base_url)


@pytest.fixture
async def app_factory(database_url: str) -> AsyncIterator[Callable[..., Awaitable[FastAPI]]]:
    """Build more apps over this engine's database, with settings overridden.

    Each app gets its own runtime (engine, rate limiter, revocations); all are shut down and
    their rows removed after the test.
    """
    started: list[tuple[FastAPI, Any]] = []

    async def build(**overrides: Any) -> FastAPI:
        application = create_app(make_settings(database_url, **overrides))
        lifespan = application.router.lifespan_context(application)
        await lifespan.__aenter__()
        started.append((application, lifespan))
        return application

    yield build
    if started:
        await truncate_all(started[0][0])
    for _application, lifespan in reversed(started):
        await lifespan.__aexit__(None, None, None)


class PostgresDatabases:
    """Create more empty databases on the test server; whatever is left is dropped at the end.

    Synchronous, and safe to call from async tests: the work runs on its own thread and loop.
    """

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url
        self._names: list[str] = []

    def create(self) -> str:
        name = f"primetrade_extra_{uuid.uuid4().hex[:10]}"
        _on_own_loop(_postgres_database(name, drop=False))
        self._names.append(name)
        return make_url(self._base_url).set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        assert name in self._names, f"{name} was not made here"
        _on_own_loop(_postgres_database(name, drop=True))
        self._names.remove(name)

    def drop_all(self) -> None:
        for name in list(self._names):
            _on_own_loop(_postgres_database(name, drop=True))
            self._names.remove(name)


def _on_own_loop(coroutine: Coroutine[Any, Any, None]) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="session")
def postgres_databases(postgres_base_url: str) -> Iterator[PostgresDatabases]:
    """Extra private PostgreSQL databases (skipped like every PostgreSQL leg when unreachable)."""
    databases = PostgresDatabases(postgres_base_url)
    try:
        yield databases
    finally:
        databases.drop_all()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A Redis server of the test's own on a free port, which the test may stop and start."""
    reason = redis_unavailable_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI needs redis-server for a private Redis: {reason}")
        pytest.skip(f"SKIPPED private Redis: {reason}")
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()
