"""The SQLite engine the app builds: WAL and enforced foreign keys on every connection."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from primetrade.kit.db import create_engine, create_sessionmaker, read_only, session_scope
from primetrade.migrations import upgrade
from primetrade.tasks.models import Task
from primetrade.users.models import User
from tests.conftest import make_settings


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'primetrade.db'}"
    upgrade(url)
    built = create_engine(make_settings(url))
    try:
        yield built
    finally:
        await built.dispose()


def a_task(owner_id: uuid.UUID) -> Task:
    return Task(owner_id=owner_id, title="Orphan", title_key="orphan")


async def test_every_connection_runs_in_wal_mode_with_foreign_keys_on(
    engine: AsyncEngine,
) -> None:
    readers = read_only(engine, pgbouncer=False)  # deferred: three may hold a transaction
    async with AsyncExitStack() as stack:
        # Held at once, so each is a connection of its own, each set up when it was opened.
        connections = [await stack.enter_async_context(readers.connect()) for _ in range(3)]
        raw = {id(await connection.get_raw_connection()) for connection in connections}
        assert len(raw) == 3
        for connection in connections:
            assert await connection.scalar(text("PRAGMA journal_mode")) == "wal"
            assert await connection.scalar(text("PRAGMA foreign_keys")) == 1


async def test_a_task_of_a_missing_user_is_refused(engine: AsyncEngine) -> None:
    sessions = create_sessionmaker(engine)
    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        async with session_scope(sessions) as session:
            session.add(a_task(uuid.uuid4()))
    async with session_scope(sessions) as session:
        assert await session.scalar(select(func.count()).select_from(Task)) == 0


async def test_deleting_a_user_deletes_their_tasks(engine: AsyncEngine) -> None:
    sessions = create_sessionmaker(engine)
    async with session_scope(sessions) as session:
        user = User(email="gone@example.com", password_hash="x")
        session.add(user)
        await session.flush()
        session.add(a_task(user.id))
    async with engine.begin() as connection:  # as a bulk delete would: no ORM cascade
        await connection.execute(text("DELETE FROM users"))
        assert await connection.scalar(select(func.count()).select_from(Task)) == 0
