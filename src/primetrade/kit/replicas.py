"""Read replicas: safe requests read from a healthy replica, everything else from the primary.

A replica is chosen per request, round-robin among those that answered their last probe, are
no further behind than the read-your-writes window and did not just fail a request. When a
replica fails under a request (a pooled connection breaks, or a new one cannot be opened) it
is left out for a while and the statement runs again on the primary in the same request, so a
dead replica never costs a client an error.

Read-your-writes is a time window, not a WAL position: after a committed write the writer's
reads go to the primary for READ_YOUR_WRITES_SECONDS, and a replica further behind than that
window is taken out of the rotation, so every replica still serving reads has the write. A WAL
comparison (the primary's LSN at the user's commit against `pg_last_wal_replay_lsn()`) would
be exact but costs a query on the replica before every read of a recent writer, and the LSN
would have to travel between instances for every write; the window costs nothing on the read
path and needs one shared key per writer.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import suppress
from typing import Any, Protocol

from sqlalchemy import Engine, Result, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session

from primetrade.kit.db import create_engine, read_only, uses_pgbouncer
from primetrade.kit.errors import is_disconnect
from primetrade.kit.logging import get_logger
from primetrade.kit.metrics import REPLICA_FALLBACKS, REPLICA_LAG, REPLICA_UP
from primetrade.kit.redisstore import RedisStore, StoreUnavailable
from primetrade.settings import Settings

log = get_logger(__name__)
_REPLICA = "replica"
_FALLBACK = "fallback_bind"
_FELL_BACK = "fell_back"
_PRIMARY_LSN = text("SELECT pg_current_wal_lsn()::text")
# Measured against the primary's WAL position, not the replay timestamp alone: on an idle
# primary nothing is replayed, and `now() - pg_last_xact_replay_timestamp()` grows while the
# replica is not behind at all. A replica that has replayed everything the primary had written
# when asked is 0 s behind; one that has not is as old as the last transaction it replayed.
_REPLICA_STATE = text(
    "SELECT pg_is_in_recovery(),"
    " pg_wal_lsn_diff(CAST(CAST(:primary_lsn AS text) AS pg_lsn), pg_last_wal_replay_lsn()),"
    " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())"
)


class RecentWriters(Protocol):
    """Who wrote in the last few seconds; shared between instances when it is backed by Redis."""

    async def mark(self, user_id: str) -> None: ...

    async def is_recent(self, user_id: str) -> bool: ...


class MemoryRecentWriters:
    """The in-process marker: right for one instance, or when a user sticks to one."""

    def __init__(self, window_seconds: float) -> None:
        self._window = window_seconds
        # Every mark lives equally long, so insertion order is expiry order: the oldest
        # entries sit at the front and are dropped there.
        self._until: OrderedDict[str, float] = OrderedDict()

    async def mark(self, user_id: str) -> None:
        now = time.monotonic()
        self._until.pop(user_id, None)
        self._until[user_id] = now + self._window
        while self._until and next(iter(self._until.values())) <= now:
            self._until.popitem(last=False)

    async def is_recent(self, user_id: str) -> bool:
        until = self._until.get(user_id)
        return until is not None and until > time.monotonic()


class RedisRecentWriters:
    """The marker shared by every instance through Redis.

    This instance's own marks are kept in-process as well, so while Redis is away only the
    marks made by other instances are lost (their writers may read a replica that lags).
    """

    def __init__(self, store: RedisStore, window_seconds: float) -> None:
        self._store = store
        self._local = MemoryRecentWriters(window_seconds)
        self._window_ms = int(window_seconds * 1000)

    async def mark(self, user_id: str) -> None:
        await self._local.mark(user_id)
        if self._window_ms <= 0:
            return
        key = self._store.key("recent_writer", user_id)
        with suppress(StoreUnavailable):
            await self._store.run(lambda client: client.set(key, b"1", px=self._window_ms))

    async def is_recent(self, user_id: str) -> bool:
        if await self._local.is_recent(user_id):
            return True
        key = self._store.key("recent_writer", user_id)
        try:
            return bool(await self._store.run(lambda client: client.exists(key)))
        except StoreUnavailable:
            return False


class ReplicaSession(Session):
    """A session on a replica; it moves to the primary when the replica fails under it."""


def _fall_back_to_primary(state: ORMExecuteState) -> Result[Any] | None:
    info = state.session.info
    if info.get(_FELL_BACK):
        return state.invoke_statement(bind_arguments={"bind": info[_FALLBACK]})
    try:
        return state.invoke_statement()
    except (DBAPIError, OSError) as exc:
        if not is_disconnect(exc):
            raise
        info[_REPLICA].failed(exc)
    # A safe request only reads, in autocommit: running the statement again elsewhere repeats
    # nothing. Closing hands back the broken connection; objects loaded so far stay readable.
    state.session.close()
    info[_FELL_BACK] = True
    return state.invoke_statement(bind_arguments={"bind": info[_FALLBACK]})


event.listen(ReplicaSession, "do_orm_execute", _fall_back_to_primary)


def reads_from_replica(session: AsyncSession) -> bool:
    """Whether `session`'s next statement would run on a replica."""
    return _REPLICA in session.info and not session.info.get(_FELL_BACK)


def read_from_primary(session: AsyncSession) -> None:
    """Run the rest of this replica session's statements on the primary."""
    if _REPLICA in session.info:
        session.info[_FELL_BACK] = True


class Replica:
    """One replica: its engine, its session factory and what the last probe found."""

    def __init__(self, settings: Settings, url: str, fallback: Engine) -> None:
        parts = make_url(url)
        self.name = f"{parts.host}:{parts.port or 5432}/{parts.database}"
        self._pooled = create_engine(settings, url, pool_size=settings.db_replica_pool_size)
        self.engine = read_only(self._pooled, pgbouncer=uses_pgbouncer(settings, url))
        self.sessions = async_sessionmaker(
            self.engine,
            sync_session_class=ReplicaSession,
            expire_on_commit=False,
            autoflush=False,
            info={_REPLICA: self, _FALLBACK: fallback},
        )
        self.up = True
        self.lag_seconds = 0.0
        self._skip_seconds = settings.db_replica_check_seconds
        self._skip_until = 0.0

    async def dispose(self) -> None:
        await self._pooled.dispose()

    def state(self, max_lag: float) -> str:
        if not self.up or time.monotonic() < self._skip_until:
            return "down"
        return "lagging" if self.lag_seconds > max_lag else "ok"

    def failed(self, exc: BaseException) -> None:
        """Leave this replica out until a probe finds it back or the pause runs out."""
        self._skip_until = time.monotonic() + self._skip_seconds
        log.warning("replica_failed", replica=self.name, error=type(exc).__name__)
        REPLICA_FALLBACKS.labels(self.name).inc()

    async def probe(self, primary_lsn: str | None, limit_seconds: float) -> None:
        try:
            async with asyncio.timeout(limit_seconds), self.engine.connect() as connection:
                result = await connection.execute(_REPLICA_STATE, {"primary_lsn": primary_lsn})
                row = result.one()
        except (DBAPIError, OSError, TimeoutError) as exc:
            if self.up:
                log.warning("replica_down", replica=self.name, error=type(exc).__name__)
            self._record(up=False)
            return
        self.lag_seconds = _lag_seconds(row[0], row[1], row[2])
        self._skip_until = 0.0
        self._record(up=True)

    def _record(self, *, up: bool) -> None:
        self.up = up
        REPLICA_UP.labels(self.name).set(1 if up else 0)
        REPLICA_LAG.labels(self.name).set(self.lag_seconds)


def _lag_seconds(in_recovery: bool, behind_bytes: Any, replay_age: Any) -> float:
    if not in_recovery:
        return 0.0  # promoted, or a primary listed as a replica: never behind
    if behind_bytes is None:
        # The primary did not answer: the replay age is the best guess left.
        return float(replay_age) if replay_age is not None else 0.0
    if behind_bytes <= 0:
        return 0.0
    return float(replay_age) if replay_age is not None else math.inf


class ReplicaSet:
    """The replicas of one process, chosen in turn, probed in the background."""

    def __init__(self, settings: Settings, primary_reads: AsyncEngine) -> None:
        self._primary = primary_reads
        self._interval = settings.db_replica_check_seconds
        self._max_lag = settings.read_your_writes_seconds
        self._timeout = settings.db_connect_timeout + 1
        self.replicas: Sequence[Replica] = [
            Replica(settings, url, primary_reads.sync_engine) for url in settings.read_database_urls
        ]
        self._turn = itertools.count()
        self._task: asyncio.Task[None] | None = None

    def choose(self) -> Replica | None:
        """The next usable replica in turn, or None when the primary must serve the read."""
        usable = [replica for replica in self.replicas if replica.state(self._max_lag) == "ok"]
        return usable[next(self._turn) % len(usable)] if usable else None

    def sessions(self) -> async_sessionmaker[AsyncSession] | None:
        replica = self.choose()
        return replica.sessions if replica is not None else None

    def status(self) -> dict[str, str]:
        """`replica name -> ok | lagging | down`, for the readiness probe."""
        return {replica.name: replica.state(self._max_lag) for replica in self.replicas}

    async def check(self) -> None:
        """Probe every replica once: up or down, and how far behind the primary."""
        primary_lsn = await self._primary_lsn()
        await asyncio.gather(*(r.probe(primary_lsn, self._timeout) for r in self.replicas))

    def start(self) -> None:
        self._task = asyncio.create_task(self._probe_forever(), name="replica-probes")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for replica in self.replicas:
            await replica.dispose()

    async def _probe_forever(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self._interval)

    async def _primary_lsn(self) -> str | None:
        try:
            async with asyncio.timeout(self._timeout), self._primary.connect() as connection:
                lsn: str | None = (await connection.execute(_PRIMARY_LSN)).scalar_one()
        except (DBAPIError, OSError, TimeoutError) as exc:
            log.warning("replica_probe_without_primary", error=type(exc).__name__)
            return None
        return lsn
