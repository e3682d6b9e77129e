"""Database engine, declarative base, portable column types and the per-request session."""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import uuid6
from sqlalchemy import MetaData, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import DateTime, TypeDecorator

from primetrade.settings import Settings

_AFTER_COMMIT = "after_commit"
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    """A time-ordered UUIDv7: index-friendly and still unguessable enough for ids."""
    value: uuid.UUID = uuid6.uuid7()
    return uuid.UUID(bytes=value.bytes)


def upsert(session: AsyncSession, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into `table` that can say ON CONFLICT, in the dialect `session` is bound to.

    Both engines spell the clause the same way; SQLAlchemy keeps it per dialect.
    """
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every engine.

    SQLite has no timestamp type: values are stored as naive UTC text and made aware again on
    the way out, so comparisons and ordering agree with PostgreSQL's timestamptz.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _sqlite_pragmas(
    dbapi_connection: Any, _record: ConnectionPoolEntry, *, lock_timeout_ms: int
) -> None:
    # Take transaction control away from the driver, which would otherwise start a transaction
    # only at the first write and none for reads; `_sqlite_begin` emits BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(lock_timeout_ms)}")
    cursor.close()


def _json_dumps(value: Any) -> str:
    # JSON columns (task tags) are read on every list request: orjson is several times faster
    # than the standard library both ways.
    return orjson.dumps(value).decode()


SQLITE_BEGIN = "sqlite_begin"


def _sqlite_begin(connection: Connection) -> None:
    """Start every SQLite transaction explicitly, so reads see one snapshot and savepoints work.

    Writers take the write lock up front (BEGIN IMMEDIATE): a deferred transaction that reads
    and then writes fails with SQLITE_BUSY at once when another writer got in between, while an
    immediate one waits its turn under `busy_timeout`. Read-only engines pass
    `sqlite_begin="DEFERRED"`.
    """
    mode = connection.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
    connection.exec_driver_sql(f"BEGIN {mode}")


def create_engine(
    settings: Settings, url: str | None = None, *, pool_size: int | None = None
) -> AsyncEngine:
    """An engine for `url` (default: the primary database) with the pool settings applied."""
    url = url or settings.database_url
    if url.startswith("sqlite"):
        return _sqlite_engine(settings, url)
    pgbouncer = uses_pgbouncer(settings, url)
    # No pool_pre_ping: it costs a round trip on every checkout. A connection that died with
    # the server fails its request with a disconnect error, which invalidates the whole pool
    # (so the next request reconnects) and is answered 503 `database_unavailable`.
    engine = create_async_engine(
        url,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=1800,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args=_asyncpg_connect_args(settings, pgbouncer=pgbouncer),
    )
    if pgbouncer:
        event.listen(
            engine.sync_engine,
            "begin",
            functools.partial(_transaction_timeouts, settings=settings),
        )
    return engine


def _sqlite_engine(settings: Settings, url: str) -> AsyncEngine:
    ensure_sqlite_dir(url)
    engine = create_async_engine(
        url,
        connect_args={"timeout": settings.db_lock_timeout_ms / 1000},
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
    )
    event.listen(
        engine.sync_engine,
        "connect",
        functools.partial(_sqlite_pragmas, lock_timeout_ms=settings.db_lock_timeout_ms),
    )
    event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def uses_pgbouncer(settings: Settings, url: str) -> bool:
    """Whether `url` reaches PostgreSQL through PgBouncer in transaction pooling mode.

    Either said outright (DB_PGBOUNCER) or implied by a URL that already turns SQLAlchemy's
    statement cache off (`?prepared_statement_cache_size=0`), the usual sign of a pooler.
    """
    cache_size = make_url(url).query.get("prepared_statement_cache_size")
    return settings.db_pgbouncer or cache_size == "0"


def _asyncpg_connect_args(settings: Settings, *, pgbouncer: bool) -> dict[str, Any]:
    args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout,
        "command_timeout": settings.db_statement_timeout_ms / 1000 + 5,
    }
    if not pgbouncer:
        args["server_settings"] = {
            "statement_timeout": str(settings.db_statement_timeout_ms),
            "lock_timeout": str(settings.db_lock_timeout_ms),
        }
        return args
    # Under transaction pooling consecutive transactions of one client connection run on
    # different server connections, so nothing may outlive a transaction: no statement cache
    # in asyncpg or in SQLAlchemy's driver layer, and a fresh name for every prepared statement
    # (asyncpg numbers them per client connection, so two clients would collide on one server
    # connection). PgBouncer also refuses session settings in the startup packet; the timeouts
    # are set per transaction instead (`_transaction_timeouts`).
    args.update(
        statement_cache_size=0,
        prepared_statement_cache_size=0,
        prepared_statement_name_func=_unique_statement_name,
    )
    return args


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def _transaction_timeouts(connection: Connection, *, settings: Settings) -> None:
    """Apply the lock and statement timeouts to a transaction that goes through PgBouncer.

    One extra round trip per write transaction, the price of transaction pooling; read-only
    transactions skip it and rely on the driver's `command_timeout`. (An operator who sets both
    timeouts on the database role, `ALTER ROLE ... SET lock_timeout = ...`, gets the same
    effect for free, but the settings would then no longer be the single source of truth.)
    """
    if connection.get_execution_options().get("postgresql_readonly"):
        return
    connection.exec_driver_sql(
        "SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)",
        (str(settings.db_lock_timeout_ms), str(settings.db_statement_timeout_ms)),
    )


def read_only(engine: AsyncEngine, *, pgbouncer: bool) -> AsyncEngine:
    """The engine for safe (GET/HEAD) requests.

    On PostgreSQL they run in autocommit: no BEGIN/COMMIT round trips for a request that only
    reads. On SQLite they open a deferred transaction instead of taking the write lock.
    Through PgBouncer they run in a read-only transaction: outside one, PgBouncer may hand a
    statement's execution to another server connection than the one it was prepared on (it
    tracks prepared statements only from 1.21, with `max_prepared_statements`), so the two
    extra round trips buy reads that work at all.
    """
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{SQLITE_BEGIN: "DEFERRED"})
    if pgbouncer:
        return engine.execution_options(postgresql_readonly=True)
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def ensure_sqlite_dir(url: str) -> None:
    """Create the folder of a SQLite database file so a fresh checkout just runs."""
    if not url.startswith("sqlite"):
        return
    path = url.split(":///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def after_commit(session: AsyncSession, callback: Callable[[], Awaitable[None] | None]) -> None:
    """Run `callback` once the request's transaction has committed; dropped on rollback.

    A callback that returns an awaitable (a coroutine function) is awaited there, in order.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


@asynccontextmanager
async def session_scope(
    factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One transaction: committed when the body succeeds, rolled back when it raises."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            session.info.pop(_AFTER_COMMIT, None)
            raise
        for callback in session.info.pop(_AFTER_COMMIT, ()):
            result = callback()
            if inspect.isawaitable(result):
                await result
