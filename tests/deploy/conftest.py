"""The app the deployment files probe and scrape, served once per package (SQLite)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from primetrade.app import create_app
from primetrade.migrations import upgrade
from tests.conftest import asgi_client, make_settings
from tests.deploy.support import probed_paths


@pytest.fixture(scope="package")
def deploy_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite database of its own."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('deploy') / 'primetrade.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="package")
async def deployed_app(deploy_database_url: str) -> AsyncIterator[FastAPI]:
    # An anonymous budget of one, so a second anonymous call records a rate-limit metric too.
    settings = make_settings(
        deploy_database_url,
        rate_limit_enabled=True,
        rate_limit_anonymous="1/day",
        redis_url=None,
        read_database_urls=[],
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="package")
async def route_status(deployed_app: FastAPI) -> dict[str, int]:
    """What the app answers on each of `probed_paths()` (the probes need a 200)."""
    async with asgi_client(deployed_app) as client:
        return {path: (await client.get(path)).status_code for path in sorted(probed_paths())}
