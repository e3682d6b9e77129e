"""Operations as an operator meets them: probes, a database outage, settings, the CLI, the
migrations and a real `primetrade serve` process.

The outage tests run their own PostgreSQL server (tests/pgserver.py) so they can stop and
start it under a live app; the shared server is never touched.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import Result
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from primetrade.app import create_app
from primetrade.cli import cli
from primetrade.kit.db import Base
from primetrade.migrations import alembic_config, downgrade, upgrade
from primetrade.settings import DEFAULT_SECRET_KEY, Settings, get_settings
from tests import pgserver
from tests.conftest import DATABASE_LEGS, IN_CI, PostgresDatabases, asgi_client, make_settings
from tests.helpers import API, PASSWORD, Api, assert_problem

T = TypeVar("T")
SECRET = "test-secret-key-0123456789abcdef0123456789"
HANG_GUARD_SECONDS = 20  # a stuck request fails the test instead of hanging the run
SCHEMA_TABLES = {"users", "auth_sessions", "refresh_tokens", "tasks", "idempotency_keys"}


async def bounded(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, HANG_GUARD_SECONDS)


@asynccontextmanager
async def running_app(database_url: str, **overrides: Any) -> AsyncIterator[FastAPI]:
    # Without the cache, so every request here really meets the database under test (a
    # cached read would be answered 200 while it is down).
    overrides.setdefault("cache_enabled", False)
    application = create_app(make_settings(database_url, **overrides))
    async with application.router.lifespan_context(application):
        yield application


def unreachable_postgres_url() -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:{pgserver.free_port()}/nothing_listens"


# --- Probes ---------------------------------------------------------------------------------


async def test_ready_reports_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}
    head = await client.head("/ready")
    assert (head.status_code, head.content) == (200, b"")


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
async def test_without_a_database_health_is_up_and_ready_is_503(
    engine: str, tmp_path: Path
) -> None:
    # A folder cannot be opened as a SQLite file; nothing listens on the PostgreSQL port.
    url = f"sqlite+aiosqlite:///{tmp_path}" if engine == "sqlite" else unreachable_postgres_url()
    async with running_app(url) as application, asgi_client(application) as client:
        health = await bounded(client.get("/health"))
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        assert (await bounded(client.head("/health"))).status_code == 200
        ready = await bounded(client.get("/ready"))
        body = assert_problem(ready, 503, "not_ready")
        assert body["checks"] == {"database": "down"}
        assert ready.headers["retry-after"].isdigit()
        assert (await bounded(client.head("/ready"))).status_code == 503


# --- A real database outage -----------------------------------------------------------------


@pytest.fixture
def private_postgres() -> Iterator[pgserver.PrivateServer]:
    """A migrated PostgreSQL server of this test's own, stopped and deleted afterwards."""
    reason = pgserver.unavailable_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI needs a private PostgreSQL server: {reason}")
        pytest.skip(f"SKIPPED private PostgreSQL server: {reason}")
    server = pgserver.PrivateServer.create()
    try:
        server.start()
        upgrade(server.url)
        yield server
    finally:
        server.destroy()


async def assert_database_unavailable(api: Api, headers: dict[str, str]) -> None:
    calls: list[Callable[[], Awaitable[httpx.Response]]] = [
        lambda: api.client.get(f"{API}/tasks", headers=headers),
        lambda: api.client.post(f"{API}/tasks", json={"title": "During outage"}, headers=headers),
        lambda: api.client.get(f"{API}/users/me", headers=headers),
        lambda: api.login("nobody@example.com"),
    ]
    for call in calls:
        response = await bounded(call())
        assert_problem(response, 503, "database_unavailable")
        assert response.headers["retry-after"].isdigit()


async def fill_pool(api: Api, headers: dict[str, str]) -> None:
    """Several pooled connections, all of which die with the server."""
    calls = [api.client.get(f"{API}/tasks", headers=headers) for _ in range(4)]
    responses = await bounded(asyncio.gather(*calls))
    assert {response.status_code for response in responses} == {200}


async def task_titles(api: Api, headers: dict[str, str]) -> list[str]:
    response = await bounded(api.client.get(f"{API}/tasks?sort=title", headers=headers))
    assert response.status_code == 200, response.text
    return [task["title"] for task in response.json()["items"]]


@pytest.mark.postgres
async def test_outage_answers_503_then_the_same_app_recovers(
    private_postgres: pgserver.PrivateServer,
) -> None:
    async with running_app(private_postgres.url) as application, asgi_client(application) as c:
        api = Api(c)
        alice = await bounded(api.account())
        for title in ("Alpha", "Beta", "Gamma"):
            await bounded(api.create_task(alice, title=title))
        await fill_pool(api, alice.headers)

        await asyncio.to_thread(private_postgres.stop, "immediate")
        await assert_database_unavailable(api, alice.headers)
        assert_problem(await bounded(c.get("/ready")), 503, "not_ready")
        assert (await bounded(c.get("/health"))).status_code == 200

        await asyncio.to_thread(private_postgres.start)
        assert (await bounded(c.get("/ready"))).status_code == 200
        assert await task_titles(api, alice.headers) == ["Alpha", "Beta", "Gamma"]
        await bounded(api.create_task(alice, title="Delta"))
        assert await task_titles(api, alice.headers) == ["Alpha", "Beta", "Delta", "Gamma"]
        assert (await bounded(api.login(alice.email))).status_code == 200


@pytest.mark.postgres
async def test_restart_between_requests_costs_at_most_one_503(
    private_postgres: pgserver.PrivateServer,
) -> None:
    async with running_app(private_postgres.url) as application, asgi_client(application) as c:
        api = Api(c)
        alice = await bounded(api.account())
        await bounded(api.create_task(alice, title="Survives"))
        await fill_pool(api, alice.headers)

        await asyncio.to_thread(private_postgres.stop, "immediate")
        await asyncio.to_thread(private_postgres.start)
        first = await bounded(c.get(f"{API}/tasks", headers=alice.headers))
        if first.status_code != 200:
            assert_problem(first, 503, "database_unavailable")
        for _ in range(5):
            assert await task_titles(api, alice.headers) == ["Survives"]


@pytest.mark.postgres
async def test_app_started_while_the_database_is_down_serves_once_it_is_up(
    private_postgres: pgserver.PrivateServer,
) -> None:
    await asyncio.to_thread(private_postgres.stop)
    async with running_app(private_postgres.url) as application, asgi_client(application) as c:
        assert (await bounded(c.get("/health"))).status_code == 200
        assert_problem(await bounded(c.get("/ready")), 503, "not_ready")
        assert_problem(await bounded(Api(c).login("a@example.com")), 503, "database_unavailable")
        await asyncio.to_thread(private_postgres.start)
        assert (await bounded(c.get("/ready"))).status_code == 200
        await bounded(Api(c).account())


# --- Settings -------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No settings from the surrounding environment or a `.env` file."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.mark.parametrize("environment", ["production", "test"])
def test_only_development_accepts_the_default_secret_key(
    clean_env: pytest.MonkeyPatch, environment: str
) -> None:
    assert Settings().secret_key == DEFAULT_SECRET_KEY  # development, the default
    clean_env.setenv("ENVIRONMENT", environment)
    with pytest.raises(ValidationError, match="SECRET_KEY must be set"):
        Settings()
    clean_env.setenv("SECRET_KEY", DEFAULT_SECRET_KEY)
    with pytest.raises(ValidationError, match="SECRET_KEY must be set"):
        Settings()
    clean_env.setenv("SECRET_KEY", SECRET)
    assert Settings().secret_key == SECRET


def test_a_short_secret_key_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ENVIRONMENT", "production")
    clean_env.setenv("SECRET_KEY", "too-short-to-sign-anything")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert [error["loc"] for error in caught.value.errors()] == [("secret_key",)]


def test_list_settings_parse_from_comma_separated_env(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("TRUSTED_PROXIES", "10.0.0.1, 192.168.0.0/16,,fd00::/8 ")
    clean_env.setenv("CORS_ORIGINS", "https://app.example.com,http://localhost:5173")
    settings = Settings()
    assert settings.trusted_proxies == ["10.0.0.1", "192.168.0.0/16", "fd00::/8"]
    assert settings.cors_origins == ["https://app.example.com", "http://localhost:5173"]
    clean_env.setenv("TRUSTED_PROXIES", "")
    assert Settings().trusted_proxies == []


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("ENVIRONMENT", "staging", "development"),
        ("DB_POOL_SIZE", "0", "greater than or equal to 1"),
        ("ACCESS_TOKEN_TTL_SECONDS", "soon", "valid integer"),
        ("TRUSTED_PROXIES", "10.0.0.1,10.0.0.300", "10.0.0.300"),
        ("TRUSTED_PROXIES", "10.0.0.1/8", "10.0.0.1/8"),
        ("CORS_ORIGINS", "app.example.com", "app.example.com"),
        ("CORS_ORIGINS", "https://app.example.com/", "https://app.example.com/"),
    ],
)
def test_invalid_values_are_refused_by_name(
    clean_env: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    [error] = caught.value.errors()
    assert error["loc"] == (name.lower(),)
    assert says in error["msg"]


async def test_cors_origins_from_env_reach_the_app(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cors.db'}")
    clean_env.setenv("CORS_ORIGINS", "https://app.example.com, https://admin.example.com")
    clean_env.setenv("LOG_LEVEL", "WARNING")
    application = create_app(Settings())
    preflight = {"Access-Control-Request-Method": "POST"}
    async with application.router.lifespan_context(application), asgi_client(application) as c:
        for origin, allowed in [("https://admin.example.com", True), ("https://x.test", False)]:
            headers = {**preflight, "Origin": origin}
            response = await bounded(c.options(f"{API}/tasks", headers=headers))
            assert (response.headers.get("access-control-allow-origin") == origin) is allowed


# --- The command line -----------------------------------------------------------------------


@pytest.fixture(params=DATABASE_LEGS)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema) on each engine, and through PgBouncer."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'primetrade.db'}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    url = databases.create()
    try:
        if request.param == "pgbouncer":
            yield request.getfixturevalue("pgbouncer").url_for(url)
        else:
            yield url
    finally:
        databases.drop(url)


def invoke(database_url: str, *args: str, prompts: str | None = None) -> Result:
    """Run `primetrade ARGS` in-process with the settings a deployment would give it."""
    env = {
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "test",
        "SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
    }
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli, list(args), env=env, input=prompts)
    finally:
        get_settings.cache_clear()
        root.handlers, root.level = handlers, level  # some commands configure logging


def with_api(database_url: str, scenario: Callable[[Api], Awaitable[T]]) -> T:
    """Drive the API over `database_url` from a synchronous test, as a client would."""

    async def run() -> T:
        async with running_app(database_url) as application, asgi_client(application) as c:
            return await bounded(scenario(Api(c)))

    return asyncio.run(run())


async def role_after_login(api: Api, email: str, password: str) -> str | int:
    """The account's role, or the login's status code when it is refused."""
    response = await api.login(email, password)
    if response.status_code != 200:
        return response.status_code
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    me = await api.client.get(f"{API}/users/me", headers=headers)
    role: str = me.json()["role"]
    return role


async def sync_query(database_url: str, work: Callable[[Connection], T]) -> T:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


def table_names(database_url: str) -> set[str]:
    return set(asyncio.run(sync_query(database_url, lambda c: inspect(c).get_table_names())))


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("serve", "migrate", "create-admin", "demo", "openapi"):
        assert command in result.output


def test_migrate_creates_the_schema(fresh_url: str) -> None:
    result = invoke(fresh_url, "migrate")
    assert result.exit_code == 0, result.output
    assert "database at head" in result.output
    assert table_names(fresh_url) >= {*SCHEMA_TABLES, "alembic_version"}
    head = ScriptDirectory.from_config(alembic_config(fresh_url)).get_current_head()
    query = text("SELECT version_num FROM alembic_version")
    assert asyncio.run(sync_query(fresh_url, lambda c: c.execute(query).scalar_one())) == head


def test_create_admin_creates_then_promotes_and_repasswords(fresh_url: str) -> None:
    upgrade(fresh_url)
    typed = "Admin-pass-1\nAdmin-pass-1\n"  # the prompt asks twice
    created = invoke(fresh_url, "create-admin", "--email", " Boss@Example.com", prompts=typed)
    assert created.exit_code == 0, created.output
    assert "created admin boss@example.com" in created.output
    role = with_api(fresh_url, lambda a: role_after_login(a, "boss@example.com", "Admin-pass-1"))
    assert role == "admin"

    with_api(fresh_url, lambda api: api.register("carol@example.com"))
    new_password = "Fresh-admin-2"
    promoted = invoke(
        fresh_url, "create-admin", "--email", "carol@example.com", "--password", new_password
    )
    assert promoted.exit_code == 0, promoted.output
    assert "promoted admin carol@example.com" in promoted.output
    assert with_api(fresh_url, lambda a: role_after_login(a, "carol@example.com", PASSWORD)) == 401
    role = with_api(fresh_url, lambda a: role_after_login(a, "carol@example.com", new_password))
    assert role == "admin"


@pytest.mark.parametrize(
    ("email", "password", "says"),
    [
        ("boss@example.com", "password", "two kinds of characters"),
        ("boss@example.com", "Ab1", "at least 8 characters"),
        ("not-an-email", "Admin-pass-1", "email"),
    ],
)
def test_create_admin_refuses_bad_input(
    tmp_path: Path, email: str, password: str, says: str
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'primetrade.db'}"
    upgrade(url)
    result = invoke(url, "create-admin", "--email", email, "--password", password)
    assert result.exit_code != 0
    assert says in result.stderr
    assert result.stderr.startswith("error:")
    count = text("SELECT count(*) FROM users")
    assert asyncio.run(sync_query(url, lambda c: c.execute(count).scalar_one())) == 0


async def tasks_seen_by(api: Api, email: str, password: str) -> int | None:
    """How many tasks the account sees after signing in, or None when it cannot sign in."""
    login = await api.login(email, password)
    if login.status_code != 200:
        return None
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    listing = await api.client.get(f"{API}/tasks?include_total=true", headers=headers)
    total: int = listing.json()["total"]
    return total


def test_demo_seeds_a_user_who_can_sign_in(fresh_url: str) -> None:
    upgrade(fresh_url)
    email, password = "demo@example.com", "Demo-password-1"
    first = invoke(fresh_url, "demo", "--email", email, "--password", password, "--tasks", "12")
    assert first.exit_code == 0, first.output
    assert f"demo user {email} / {password} has 12 tasks" in first.output
    assert with_api(fresh_url, lambda api: tasks_seen_by(api, email, password)) == 12

    # Run again: the credentials it prints work, and the count is the user's real total.
    again = invoke(fresh_url, "demo", "--email", email, "--password", "Demo-password-2")
    assert again.exit_code == 0, again.output
    assert f"demo user {email} / Demo-password-2 has 52 tasks" in again.output
    assert with_api(fresh_url, lambda api: tasks_seen_by(api, email, "Demo-password-2")) == 52


def assert_refs_resolve(spec: dict[str, Any]) -> None:
    """Every `$ref` in the spec points at a component that exists."""
    text_form = orjson.dumps(spec).decode()
    prefix = '"$ref":"#/components/schemas/'
    names = {chunk.split('"', 1)[0] for chunk in text_form.split(prefix)[1:]}
    assert names, "the spec has no references at all"
    assert names <= set(spec["components"]["schemas"]), names - set(spec["components"]["schemas"])


def test_openapi_writes_a_valid_spec_without_a_database(tmp_path: Path) -> None:
    output = tmp_path / "spec" / "openapi.json"
    output.parent.mkdir()
    result = invoke(unreachable_postgres_url(), "openapi", "--output", str(output))
    assert result.exit_code == 0, result.output
    spec = orjson.loads(output.read_bytes())
    assert spec["openapi"].startswith("3.")
    assert {"get", "post"} <= set(spec["paths"][f"{API}/tasks"])
    assert_refs_resolve(spec)
    to_stdout = invoke(unreachable_postgres_url(), "openapi")
    assert orjson.loads(to_stdout.stdout) == spec


# --- Migrations -----------------------------------------------------------------------------

# Full-text search objects the migration creates by hand for one engine, outside the models.
POSTGRES_ONLY_INDEXES = {"ix_tasks_search_vector", "ix_tasks_tags"}
POSTGRES_ONLY_COLUMNS = {("tasks", "search_vector")}
SQLITE_ONLY_TABLE_PREFIX = "tasks_fts"  # the FTS5 table, its shadow tables and its rowid map


def _hand_made(kind: str, name: str | None, table: str | None) -> bool:
    if kind == "remove_table":
        return bool(name and name.startswith(SQLITE_ONLY_TABLE_PREFIX))
    if kind == "remove_index":
        return name in POSTGRES_ONLY_INDEXES
    return kind == "remove_column" and (table, name) in POSTGRES_ONLY_COLUMNS


def schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    with warnings.catch_warnings():
        # SQLite cannot reflect the PostgreSQL-only expression index, which it never gets.
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        diffs = compare_metadata(context, Base.metadata)
    kept = []
    for diff in diffs:
        kind, subject = diff[0], diff[-1]
        table = diff[2] if kind == "remove_column" else None
        if not _hand_made(kind, getattr(subject, "name", None), table):
            kept.append(diff)
    return kept


def test_migrations_round_trip_and_match_the_models(fresh_url: str) -> None:
    upgrade(fresh_url)
    assert table_names(fresh_url) >= SCHEMA_TABLES
    downgrade(fresh_url, "base")
    assert table_names(fresh_url) == {"alembic_version"}
    upgrade(fresh_url)
    assert asyncio.run(sync_query(fresh_url, schema_differences)) == []


# --- A real server process ------------------------------------------------------------------


def wait_until_up(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    for _ in range(300):
        assert process.poll() is None, f"serve exited early:\n{log.read_text()}"
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"serve never answered /health:\n{log.read_text()}")


def serve_through_http(base_url: str) -> None:
    with httpx.Client(base_url=f"{base_url}{API}", timeout=HANG_GUARD_SECONDS) as http:
        account = {"email": "served@example.com", "password": PASSWORD}
        assert http.post("/auth/register", json=account).status_code == 201
        login = http.post("/auth/login", json=account)
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        created = http.post("/tasks", json={"title": "Over a socket"}, headers=headers)
        assert created.status_code == 201, created.text
        listed = http.get("/tasks", headers=headers).json()["items"]
        assert [task["title"] for task in listed] == ["Over a socket"]


@pytest.mark.slow
def test_serve_answers_http_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    port = pgserver.free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'data' / 'served.db'}",
        "ENVIRONMENT": "test",
        "SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
    }
    entry_point = Path(sys.executable).parent / "primetrade"
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603
            [str(entry_point), "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_up(process, base_url, log)
        serve_through_http(base_url)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=HANG_GUARD_SECONDS) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"ENVIRONMENT": "production"}, "error: settings: SECRET_KEY must be set"),
        ({"DB_POOL_SIZE": "0"}, "error: setting DB_POOL_SIZE: Input should be greater"),
    ],
)
def test_bad_settings_stop_the_cli_with_one_clear_line(
    tmp_path: Path, environment: dict[str, str], message: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "ENVIRONMENT"}}
    entry_point = Path(sys.executable).parent / "primetrade"
    result = subprocess.run(  # noqa: S603
        [str(entry_point), "migrate"],
        env={**env, **environment},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # refused before touching anything
