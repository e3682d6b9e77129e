"""Property-based tests of every operation against the app's own OpenAPI spec (Schemathesis).

Each operation gets valid and invalid requests generated from its schema, sent as a real,
signed-in caller (an admin on /admin routes) to an app over a migrated database of its own,
on SQLite and on PostgreSQL. Every response must be free of server errors and match what the
spec documents: its status code, media type, headers and body schema.

The app runs on Schemathesis' own event-loop thread (its ASGI client is synchronous), so it
gets a database of its own rather than the one the other tests truncate after each test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from primetrade.app import create_app
from primetrade.bootstrap import ensure_admin
from primetrade.migrations import upgrade
from tests.conftest import DATABASE_LEGS, PostgresDatabases, make_settings
from tests.helpers import API, PASSWORD

# Some of Schemathesis' own strategies draw from the `random` module, which Hypothesis now
# warns about; the warning concerns the library's generators, not the API under test.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)
MAX_EXAMPLES = 40
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


def _spec() -> dict[str, Any]:
    """The app's OpenAPI document, from an app that is built only to be described."""
    described = create_app(make_settings("sqlite+aiosqlite:///:memory:"))
    try:
        return described.openapi()
    finally:
        asyncio.run(described.state.runtime.close())


SPEC = _spec()
OPERATIONS = [
    pytest.param(method.upper(), path, id=f"{method.upper()} {path}")
    for path, operations in SPEC["paths"].items()
    for method in operations
]


@dataclass
class Target:
    """The app under test, its loaded schema and the real resources requests can hit."""

    app: FastAPI
    schema: Any
    user_token: str
    admin_token: str
    user_task_id: str
    admin_task_id: str
    victim_id: str

    def token_for(self, path: str) -> str:
        return self.admin_token if path.startswith(f"{API}/admin") else self.user_token

    def fixed_path_parameters(self, path: str) -> dict[str, str] | None:
        """Ids of rows that exist, so generated requests reach past the 404 as well."""
        if path.startswith(f"{API}/admin/tasks/"):
            return {"task_id": self.admin_task_id}
        if path.startswith(f"{API}/admin/users/"):
            return {"user_id": self.victim_id}
        if path.startswith(f"{API}/tasks/{{"):
            return {"task_id": self.user_task_id}
        return None


@pytest.fixture(scope="module", params=DATABASE_LEGS)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    databases: PostgresDatabases | None = None
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("schemathesis") / "api.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        databases = request.getfixturevalue("postgres_databases")
        url = databases.create()
    direct_url = url
    try:
        upgrade(url)
        if request.param == "pgbouncer":
            url = request.getfixturevalue("pgbouncer").url_for(url)
        application = create_app(make_settings(url))
        # Loading the schema starts the app's lifespan on Schemathesis' event-loop thread.
        schema = schemathesis.openapi.from_asgi("/openapi.json", application)
        try:
            yield _populate(application, schema)
        finally:
            schemathesis_asgi.shutdown_lifespans()
    finally:
        if databases is not None:
            databases.drop(direct_url)


def _populate(application: FastAPI, schema: Any) -> Target:
    settings_ = application.state.runtime.settings
    asyncio.run(ensure_admin(settings_, "fuzz-admin@example.com", PASSWORD, None))
    with schemathesis_asgi.get_client(application) as http:

        def sign_in(email: str, *, register: bool = True) -> dict[str, str]:
            if register:
                created = http.post(
                    f"{API}/auth/register", json={"email": email, "password": PASSWORD}
                )
                assert created.status_code == 201, created.text
            response = http.post(f"{API}/auth/login", json={"email": email, "password": PASSWORD})
            assert response.status_code == 200, response.text
            return {"Authorization": f"Bearer {response.json()['access_token']}"}

        def new_task(headers: dict[str, str]) -> str:
            response = http.post(f"{API}/tasks", json={"title": "Fuzz target"}, headers=headers)
            assert response.status_code == 201, response.text
            task_id: str = response.json()["id"]
            return task_id

        user = sign_in("fuzz-user@example.com")
        admin = sign_in("fuzz-admin@example.com", register=False)
        victim = sign_in("fuzz-victim@example.com")
        victim_id = http.get(f"{API}/users/me", headers=victim).json()["id"]
        return Target(
            app=application,
            schema=schema,
            user_token=user["Authorization"].removeprefix("Bearer "),
            admin_token=admin["Authorization"].removeprefix("Bearer "),
            user_task_id=new_task(user),
            admin_task_id=new_task(victim),
            victim_id=victim_id,
        )


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_operation_conforms_to_its_spec(target: Target, method: str, path: str) -> None:
    operation = target.schema[path][method]
    modes = [GenerationMode.POSITIVE]
    if (
        "parameters" in SPEC["paths"][path][method.lower()]
        or "requestBody" in (SPEC["paths"][path][method.lower()])
    ):
        modes.append(GenerationMode.NEGATIVE)
    strategies = [operation.as_strategy(mode) for mode in modes]
    fixed = target.fixed_path_parameters(path)
    if fixed is not None:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed))
    headers = {"Authorization": f"Bearer {target.token_for(path)}"}

    @given(case=st.one_of(strategies))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()
