"""PostgreSQL through PgBouncer in transaction pooling mode (tests/pgbouncer.py).

The representative modules run whole through PgBouncer as a third database leg (see
conftest.py); these tests add what a sequential suite cannot show: many clients at once sharing
few server connections, the timeouts applied per transaction, and the explicit setting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from primetrade.app import create_app
from primetrade.kit.db import create_engine, uses_pgbouncer
from tests.conftest import asgi_client, make_settings, truncate_all
from tests.helpers import API, Api
from tests.pgbouncer import SERVER_POOL_SIZE

pytestmark = [pytest.mark.postgres, pytest.mark.pgbouncer]
CLIENTS = 12  # app connections to PgBouncer, three times its server connections


@asynccontextmanager
async def bounced_app(url: str, **overrides: Any) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(url, db_pool_size=CLIENTS, **overrides))
    async with application.router.lifespan_context(application):
        try:
            yield application
        finally:
            await truncate_all(application)


async def exercise(application: FastAPI) -> None:
    """Concurrent writes and reads by several users, every one of which must succeed."""
    async with asgi_client(application) as client:
        api = Api(client)
        people = [await api.account() for _ in range(3)]
        calls = [
            api.client.post(f"{API}/tasks", json={"title": f"T{i}"}, headers=who.headers)
            for i in range(8)
            for who in people
        ]
        calls += [api.list_tasks(who, include_total="true") for who in people for _ in range(8)]
        responses = await asyncio.gather(*calls)
        assert [r.status_code for r in responses if r.status_code >= 300] == []
        for who in people:
            listed = (await api.list_tasks(who, include_total="true")).json()
            assert listed["total"] == 8


async def test_many_clients_share_few_server_connections(pgbouncer_url: str) -> None:
    assert CLIENTS > SERVER_POOL_SIZE
    async with bounced_app(pgbouncer_url) as application:
        await exercise(application)


async def test_the_setting_alone_turns_pgbouncer_mode_on(pgbouncer_url: str) -> None:
    plain = make_url(pgbouncer_url).difference_update_query(["prepared_statement_cache_size"])
    url = plain.render_as_string(hide_password=False)
    assert not uses_pgbouncer(make_settings(url), url)
    async with bounced_app(url, db_pgbouncer=True) as application:
        await exercise(application)


async def test_write_transactions_get_the_configured_timeouts(pgbouncer_url: str) -> None:
    settings = make_settings(pgbouncer_url, db_lock_timeout_ms=1234, db_statement_timeout_ms=5678)
    engine = create_engine(settings)
    try:
        async with engine.begin() as connection:
            lock = (await connection.execute(text("SHOW lock_timeout"))).scalar_one()
            statement = (await connection.execute(text("SHOW statement_timeout"))).scalar_one()
        assert (lock, statement) == ("1234ms", "5678ms")
    finally:
        await engine.dispose()
