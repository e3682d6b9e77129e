"""Who may call what: one reviewed row per API operation, checked against the OpenAPI spec.

Each row names the status every caller gets: nobody signed in, the user who owns the resource,
another user, and an admin. Requests carry real ids and valid bodies, so authorization is the
only reason left for a refusal; a refusal must change nothing and show none of the owner's
data. A new operation without a row fails the suite until someone decides who may call it.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest
from fastapi import FastAPI

from tests.helpers import API, PASSWORD, PROBLEM, Account, Api, bearer
from tests.test_admin_users import make_admin

Caller = Literal["anonymous", "owner", "other", "admin"]
# The admin goes last: its successful changes must not decide the others' answers.
CALLERS: tuple[Caller, ...] = ("anonymous", "owner", "other", "admin")
HTTP_METHODS = frozenset({"get", "put", "post", "patch", "delete", "head", "options"})
ME = f"{API}/users/me"
TASKS = f"{API}/tasks"
ADMIN = f"{API}/admin"
ADMIN_USERS = f"{ADMIN}/users"
ADMIN_TASKS = f"{ADMIN}/tasks"
ADMIN_JOBS = f"{ADMIN}/jobs"
EXPORTS = f"{API}/exports"
SAME_ORIGIN = {"X-Requested-With": "primetrade"}


@dataclass(frozen=True)
class Call:
    """One request; `probe` is a GET (path, headers) whose answer a refusal must not change."""

    method: str
    path: str
    json: Any = None
    data: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    probe: tuple[str, dict[str, str]] | None = None


@dataclass
class World:
    """Three signed-in accounts; everything the owner has carries `marker`."""

    api: Api
    owner: Account
    other: Account
    admin: Account
    marker: str

    def headers(self, caller: Caller) -> dict[str, str]:
        return {} if caller == "anonymous" else dict(getattr(self, caller).headers)

    async def task(self) -> dict[str, Any]:
        return await self.api.create_task(
            self.owner, title=f"{self.marker} task", description=self.marker
        )

    async def new_session(self, who: Account) -> dict[str, str]:
        response = await self.api.login(who.email)
        assert response.status_code == 200, response.text
        tokens: dict[str, str] = response.json()
        return tokens

    async def send(self, call: Call, headers: dict[str, str]) -> httpx.Response:
        return await self.api.client.request(
            call.method, call.path, json=call.json, data=call.data, headers=headers
        )

    async def look(self, call: Call) -> tuple[int, str] | None:
        if call.probe is None:
            return None
        response = await self.api.client.get(call.probe[0], headers=call.probe[1])
        return response.status_code, response.text


Build = Callable[[World, Caller], Awaitable[Call]]


@dataclass(frozen=True)
class Row:
    build: Build
    anonymous: int
    owner: int
    other: int
    admin: int

    def expected(self, caller: Caller) -> int:
        status: int = getattr(self, caller)
        return status

    @property
    def public(self) -> bool:
        return self.anonymous != 401


# --- how each operation is called ----------------------------------------------------------


async def register(world: World, caller: Caller) -> Call:
    email = f"new-{uuid.uuid4().hex[:12]}@example.com"
    return Call("POST", f"{API}/auth/register", json={"email": email, "password": PASSWORD})


async def login(world: World, caller: Caller) -> Call:
    body = {"email": world.owner.email, "password": PASSWORD}
    return Call("POST", f"{API}/auth/login", json=body)


async def token(world: World, caller: Caller) -> Call:
    form = {"username": world.owner.email, "password": PASSWORD}
    return Call("POST", f"{API}/auth/token", data=form)


async def refresh(world: World, caller: Caller) -> Call:
    tokens = await world.new_session(world.owner)
    return Call("POST", f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})


async def browser_sign_in(world: World, caller: Caller) -> Call:
    body = {"email": world.owner.email, "password": PASSWORD}
    return Call("POST", f"{API}/auth/session", json=body, headers=SAME_ORIGIN)


async def browser_refresh(world: World, caller: Caller) -> Call:
    """The refresh cookie is the credential, whoever's browser holds it."""
    tokens = await world.new_session(world.owner)
    cookie = {"Cookie": f"primetrade_refresh={tokens['refresh_token']}"}
    return Call("POST", f"{API}/auth/session/refresh", headers={**SAME_ORIGIN, **cookie})


async def browser_sign_out(world: World, caller: Caller) -> Call:
    """The owner ends a session with its cookie; anybody else ends only their own."""
    tokens = await world.new_session(world.owner)
    session = bearer(tokens["access_token"])
    if caller == "owner":
        headers = {
            **SAME_ORIGIN,
            **session,
            "Cookie": f"primetrade_refresh={tokens['refresh_token']}",
        }
    else:
        headers = {**SAME_ORIGIN, **world.headers(caller)}
    return Call("DELETE", f"{API}/auth/session", headers=headers, probe=(ME, session))


async def sign_out_other_sessions(world: World, caller: Caller) -> Call:
    return Call("DELETE", f"{ME}/sessions")


async def logout(world: World, caller: Caller) -> Call:
    """End one of the owner's sessions: only the owner, signed in to it, may."""
    tokens = await world.new_session(world.owner)
    session = bearer(tokens["access_token"])
    return Call(
        "POST",
        f"{API}/auth/logout",
        json={"refresh_token": tokens["refresh_token"]},
        headers=session if caller == "owner" else None,
        probe=(ME, session),
    )


async def read_me(world: World, caller: Caller) -> Call:
    return Call("GET", ME)


async def update_me(world: World, caller: Caller) -> Call:
    return Call("PATCH", ME, json={"full_name": "Renamed"})


async def change_password(world: World, caller: Caller) -> Call:
    body = {"current_password": PASSWORD, "new_password": "Another-horse-7"}
    return Call("POST", f"{ME}/password", json=body)


async def list_tasks(world: World, caller: Caller) -> Call:
    return Call("GET", TASKS)


async def create_task(world: World, caller: Caller) -> Call:
    return Call("POST", TASKS, json={"title": "A new task"})


async def task_stats(world: World, caller: Caller) -> Call:
    return Call("GET", f"{TASKS}/stats")


async def owned_task(world: World, method: str, json: Any = None, *, via: str = TASKS) -> Call:
    task = await world.task()
    probe = (f"{TASKS}/{task['id']}", world.headers("owner"))
    return Call(method, f"{via}/{task['id']}", json=json, probe=probe)


async def read_task(world: World, caller: Caller) -> Call:
    return await owned_task(world, "GET")


async def update_task(world: World, caller: Caller) -> Call:
    return await owned_task(world, "PATCH", {"title": "Changed"})


async def delete_task(world: World, caller: Caller) -> Call:
    return await owned_task(world, "DELETE")


async def list_users(world: World, caller: Caller) -> Call:
    return Call("GET", ADMIN_USERS)


async def read_user(world: World, caller: Caller) -> Call:
    return Call("GET", f"{ADMIN_USERS}/{world.owner.id}")


async def update_user(world: World, caller: Caller) -> Call:
    """Make the owner an admin: the escalation every non-admin must be refused."""
    path = f"{ADMIN_USERS}/{world.owner.id}"
    return Call("PATCH", path, json={"role": "admin"}, probe=(path, world.headers("admin")))


async def delete_user(world: World, caller: Caller) -> Call:
    victim = await world.api.register()
    path = f"{ADMIN_USERS}/{victim['id']}"
    return Call("DELETE", path, probe=(path, world.headers("admin")))


async def list_all_tasks(world: World, caller: Caller) -> Call:
    return Call("GET", ADMIN_TASKS)


async def read_any_task(world: World, caller: Caller) -> Call:
    return await owned_task(world, "GET", via=ADMIN_TASKS)


async def update_any_task(world: World, caller: Caller) -> Call:
    return await owned_task(world, "PATCH", {"title": "Changed by an admin"}, via=ADMIN_TASKS)


async def delete_any_task(world: World, caller: Caller) -> Call:
    return await owned_task(world, "DELETE", via=ADMIN_TASKS)


async def list_dead_jobs(world: World, caller: Caller) -> Call:
    return Call("GET", ADMIN_JOBS)


async def read_dead_job(world: World, caller: Caller) -> Call:
    # No dead job exists: a non-admin must be refused before the lookup could say so.
    return Call("GET", f"{ADMIN_JOBS}/{uuid.uuid4()}")


async def retry_dead_job(world: World, caller: Caller) -> Call:
    return Call("POST", f"{ADMIN_JOBS}/{uuid.uuid4()}/retry")


async def verify_email(world: World, caller: Caller) -> Call:
    # A token only ever travels in an email: a made-up one is refused alike for everybody.
    return Call("POST", f"{API}/auth/verify-email", json={"token": uuid.uuid4().hex})


async def resend_verification(world: World, caller: Caller) -> Call:
    return Call("POST", f"{API}/auth/verify-email/resend", json={"email": world.owner.email})


async def password_reset(world: World, caller: Caller) -> Call:
    return Call("POST", f"{API}/auth/password-reset", json={"email": world.owner.email})


async def confirm_password_reset(world: World, caller: Caller) -> Call:
    body = {"token": uuid.uuid4().hex, "new_password": "Brand-new-horse-3"}
    return Call("POST", f"{API}/auth/password-reset/confirm", json=body)


async def read_notifications(world: World, caller: Caller) -> Call:
    return Call("GET", f"{ME}/notifications")


async def update_notifications(world: World, caller: Caller) -> Call:
    return Call("PATCH", f"{ME}/notifications", json={"daily_digest": False})


async def archive_task(world: World, caller: Caller) -> Call:
    call = await owned_task(world, "POST")
    return Call("POST", f"{call.path}/archive", probe=call.probe)


async def restore_task(world: World, caller: Caller) -> Call:
    call = await owned_task(world, "POST")
    archived = await world.api.client.post(f"{call.path}/archive", headers=world.owner.headers)
    assert archived.status_code == 200, archived.text
    return Call("POST", f"{call.path}/restore", probe=call.probe)


async def create_export(world: World, caller: Caller) -> Call:
    return Call("POST", EXPORTS, json={"format": "csv"})


async def list_exports(world: World, caller: Caller) -> Call:
    return Call("GET", EXPORTS)


async def owned_export(world: World) -> str:
    """The path of one of the owner's exports, built (the server runs the job itself)."""
    headers = world.headers("owner")
    response = await world.api.client.post(EXPORTS, json={"format": "json"}, headers=headers)
    assert response.status_code == 202, response.text
    path = f"{EXPORTS}/{response.json()['id']}"
    for _ in range(400):
        if (await world.api.client.get(path, headers=headers)).json()["status"] == "ready":
            return path
        await asyncio.sleep(0.025)
    raise AssertionError(f"{path} never became ready")


async def read_export(world: World, caller: Caller) -> Call:
    path = await owned_export(world)
    return Call("GET", path, probe=(path, world.headers("owner")))


async def download_export(world: World, caller: Caller) -> Call:
    path = await owned_export(world)
    return Call("GET", f"{path}/file", probe=(path, world.headers("owner")))


async def import_tasks(world: World, caller: Caller) -> Call:
    return Call("POST", f"{API}/imports", json=[{"title": "Imported"}])


async def weekly_report(world: World, caller: Caller) -> Call:
    return Call("GET", f"{API}/reports/weekly")


# --- the matrix ------------------------------------------------------------------------------

MATRIX: dict[tuple[str, str], Row] = {
    # Public: the credentials are in the body, whoever sends them.
    ("POST", f"{API}/auth/register"): Row(register, 201, 201, 201, 201),
    ("POST", f"{API}/auth/login"): Row(login, 200, 200, 200, 200),
    ("POST", f"{API}/auth/token"): Row(token, 200, 200, 200, 200),
    ("POST", f"{API}/auth/refresh"): Row(refresh, 200, 200, 200, 200),
    # Answered alike for every address and caller; the proof is the emailed token.
    ("POST", f"{API}/auth/verify-email"): Row(verify_email, 400, 400, 400, 400),
    ("POST", f"{API}/auth/verify-email/resend"): Row(resend_verification, 202, 202, 202, 202),
    ("POST", f"{API}/auth/password-reset"): Row(password_reset, 202, 202, 202, 202),
    ("POST", f"{API}/auth/password-reset/confirm"): Row(confirm_password_reset, 400, 400, 400, 400),
    # The web app's sign-in: the refresh token travels in a cookie (see test_browser_session).
    ("POST", f"{API}/auth/session"): Row(browser_sign_in, 200, 200, 200, 200),
    ("POST", f"{API}/auth/session/refresh"): Row(browser_refresh, 200, 200, 200, 200),
    ("DELETE", f"{API}/auth/session"): Row(browser_sign_out, 204, 204, 204, 204),
    # Someone else's refresh token is not valid for you: nothing is signed out.
    ("POST", f"{API}/auth/logout"): Row(logout, 401, 204, 401, 401),
    # Your own account: everybody signed in has one.
    ("GET", ME): Row(read_me, 401, 200, 200, 200),
    ("PATCH", ME): Row(update_me, 401, 200, 200, 200),
    ("POST", f"{ME}/password"): Row(change_password, 401, 204, 204, 204),
    ("DELETE", f"{ME}/sessions"): Row(sign_out_other_sessions, 401, 204, 204, 204),
    ("GET", f"{ME}/notifications"): Row(read_notifications, 401, 200, 200, 200),
    ("PATCH", f"{ME}/notifications"): Row(update_notifications, 401, 200, 200, 200),
    # Your own tasks; another user's task does not exist for you, admins included.
    ("GET", TASKS): Row(list_tasks, 401, 200, 200, 200),
    ("POST", TASKS): Row(create_task, 401, 201, 201, 201),
    ("GET", f"{TASKS}/stats"): Row(task_stats, 401, 200, 200, 200),
    ("GET", f"{TASKS}/{{task_id}}"): Row(read_task, 401, 200, 404, 404),
    ("PATCH", f"{TASKS}/{{task_id}}"): Row(update_task, 401, 200, 404, 404),
    ("DELETE", f"{TASKS}/{{task_id}}"): Row(delete_task, 401, 204, 404, 404),
    ("POST", f"{TASKS}/{{task_id}}/archive"): Row(archive_task, 401, 200, 404, 404),
    ("POST", f"{TASKS}/{{task_id}}/restore"): Row(restore_task, 401, 200, 404, 404),
    ("POST", f"{API}/imports"): Row(import_tasks, 401, 200, 200, 200),
    ("GET", f"{API}/reports/weekly"): Row(weekly_report, 401, 200, 200, 200),
    # Your own exports; another user's export does not exist for you, admins included.
    ("POST", EXPORTS): Row(create_export, 401, 202, 202, 202),
    ("GET", EXPORTS): Row(list_exports, 401, 200, 200, 200),
    ("GET", f"{EXPORTS}/{{export_id}}"): Row(read_export, 401, 200, 404, 404),
    ("GET", f"{EXPORTS}/{{export_id}}/file"): Row(download_export, 401, 200, 404, 404),
    # Administration: admins only, even for your own account or task.
    ("GET", ADMIN_USERS): Row(list_users, 401, 403, 403, 200),
    ("GET", f"{ADMIN_USERS}/{{user_id}}"): Row(read_user, 401, 403, 403, 200),
    ("PATCH", f"{ADMIN_USERS}/{{user_id}}"): Row(update_user, 401, 403, 403, 200),
    ("DELETE", f"{ADMIN_USERS}/{{user_id}}"): Row(delete_user, 401, 403, 403, 204),
    ("GET", ADMIN_TASKS): Row(list_all_tasks, 401, 403, 403, 200),
    ("GET", f"{ADMIN_TASKS}/{{task_id}}"): Row(read_any_task, 401, 403, 403, 200),
    ("PATCH", f"{ADMIN_TASKS}/{{task_id}}"): Row(update_any_task, 401, 403, 403, 200),
    ("DELETE", f"{ADMIN_TASKS}/{{task_id}}"): Row(delete_any_task, 401, 403, 403, 204),
    ("GET", ADMIN_JOBS): Row(list_dead_jobs, 401, 403, 403, 200),
    ("GET", f"{ADMIN_JOBS}/{{job_id}}"): Row(read_dead_job, 401, 403, 403, 404),
    ("POST", f"{ADMIN_JOBS}/{{job_id}}/retry"): Row(retry_dead_job, 401, 403, 403, 404),
}
OPERATIONS = sorted(MATRIX)
AUTHENTICATED = [operation for operation in OPERATIONS if not MATRIX[operation].public]
ADMIN_ONLY = [operation for operation in OPERATIONS if operation[1].startswith(f"{ADMIN}/")]


def api_operations(app: FastAPI) -> dict[tuple[str, str], dict[str, Any]]:
    """Every (METHOD, path template) of the versioned API in the app's OpenAPI spec."""
    return {
        (method.upper(), path): operation
        for path, item in app.openapi()["paths"].items()
        if path.startswith(f"{API}/")
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def matches(template: str, path: str) -> bool:
    return re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path) is not None


def operation_id(operation: tuple[str, str]) -> str:
    return f"{operation[0]} {operation[1].removeprefix(API)}"


@pytest.fixture
async def world(api: Api, app: FastAPI) -> World:
    marker = f"marker{uuid.uuid4().hex}"
    owner = await api.account(f"{marker}@example.com", full_name=marker)
    world = World(api, owner, await api.account(), await make_admin(api, app), marker)
    await world.task()  # so the owner's lists and counts are never empty
    return world


def problems(
    world: World, caller: Caller, row: Row, call: Call, response: httpx.Response
) -> list[str]:
    """What is wrong with `caller`'s answer, if anything."""
    label = f"{caller}: {call.method} {call.path} -> {response.status_code}"
    expected = row.expected(caller)
    if response.status_code != expected:
        return [f"{label}, expected {expected}: {response.text[:300]}"]
    found = []
    if expected >= 400:
        body = response.json()
        if response.headers["content-type"] != PROBLEM or body.get("status") != expected:
            found.append(f"{label} is not a problem document")
        challenge = response.headers.get("www-authenticate", "")
        if expected == 401 and not challenge.startswith("Bearer "):
            found.append(f"{label} has no Bearer challenge")
    sees_owner = caller == "owner" or (caller == "admin" and call.path.startswith(f"{ADMIN}/"))
    if not sees_owner and (world.marker in response.text or world.owner.email in response.text):
        found.append(f"{label} shows the owner's data: {response.text[:300]}")
    return found


# --- the spec and the matrix agree ---------------------------------------------------------


def test_every_operation_in_the_spec_has_a_row_and_every_row_an_operation(app: FastAPI) -> None:
    in_spec = set(api_operations(app))
    assert sorted(in_spec - set(MATRIX)) == [], "operations nobody has reviewed: add rows"
    assert sorted(set(MATRIX) - in_spec) == [], "rows for operations that no longer exist"


def test_the_spec_documents_every_answer_in_the_matrix(app: FastAPI) -> None:
    for operation, spec in api_operations(app).items():
        row = MATRIX[operation]
        assert ("security" in spec) == (not row.public), operation
        for caller in CALLERS:
            assert str(row.expected(caller)) in spec["responses"], (operation, caller)


# Routes outside the versioned API, or left out of the spec, answer everybody the same: the
# probes, the docs and the web app's pages and assets (which hold no data; the app behind them
# asks the API). A new one fails `test_every_route_of_the_app_is_reviewed` until it is added.
PUBLIC_ROUTES: dict[tuple[str, str], tuple[str, int]] = {
    ("GET", "/health"): ("/health", 200),
    ("GET", "/ready"): ("/ready", 200),
    ("GET", "/metrics"): ("/metrics", 200),
    ("GET", "/openapi.json"): ("/openapi.json", 200),
    ("GET", "/docs"): ("/docs", 200),
    ("GET", "/docs/oauth2-redirect"): ("/docs/oauth2-redirect", 200),
    ("GET", "/redoc"): ("/redoc", 200),
    ("GET", "/"): ("/", 200),
    ("GET", "/assets/{build}/{name:path}"): ("/assets/0/app.css", 404),
    **{
        ("GET", f"/{page}{rest}"): (f"/{page}{rest.replace('{rest:path}', 'x')}", 200)
        for page in (
            "login",
            "register",
            "forgot-password",
            "reset-password",
            "verify-email",
            "tasks",
            "board",
            "stats",
            "profile",
            "admin",
        )
        for rest in ("", "/{rest:path}")
    },
}


def app_routes(routes: list[Any]) -> set[tuple[str, str]]:
    """(METHOD, path template) of every route the app answers, in the spec or not.

    Walks mounted and included routers whichever way this FastAPI version keeps them.
    """
    found: set[tuple[str, str]] = set()
    for route in routes:
        if hasattr(route, "effective_route_contexts"):  # an included router (FastAPI ≥ 0.160)
            found |= app_routes(list(route.effective_route_contexts()))
        elif hasattr(route, "routes"):  # a Mount
            prefix = getattr(route, "path", "")
            found |= {(method, prefix + path) for method, path in app_routes(route.routes)}
        else:
            methods = getattr(route, "methods", None) or {"GET"}
            found |= {(method, route.path) for method in methods if method != "HEAD"}
    return found


def test_every_route_of_the_app_is_reviewed(app: FastAPI) -> None:
    routes = app_routes(app.routes)
    api, other = (
        {r for r in routes if r[1].startswith(f"{API}/")},
        {r for r in routes if not r[1].startswith(f"{API}/")},
    )
    assert sorted(api - set(MATRIX)) == [], "API routes without a row in MATRIX"
    assert sorted(other - set(PUBLIC_ROUTES)) == [], "routes nobody has reviewed: add them"
    assert sorted(set(PUBLIC_ROUTES) - other) == [], "reviewed routes that no longer exist"


@pytest.mark.parametrize("route", sorted(PUBLIC_ROUTES), ids=lambda route: route[1])
async def test_public_routes_answer_without_a_sign_in(
    route: tuple[str, str], client: httpx.AsyncClient
) -> None:
    path, expected = PUBLIC_ROUTES[route]
    response = await client.request(route[0], path)
    assert response.status_code == expected, response.text[:300]
    assert "www-authenticate" not in response.headers


# --- the matrix, cell by cell --------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS, ids=operation_id)
async def test_authorization(operation: tuple[str, str], world: World) -> None:
    row = MATRIX[operation]
    found: list[str] = []
    for caller in CALLERS:
        call = await row.build(world, caller)
        assert (call.method, matches(operation[1], call.path)) == (operation[0], True), call
        before = await world.look(call)
        headers = world.headers(caller) if call.headers is None else call.headers
        response = await world.send(call, headers)
        found += problems(world, caller, row, call, response)
        if response.status_code >= 400 and await world.look(call) != before:
            found.append(f"{caller}: a refused {call.method} {call.path} changed something")
    assert found == [], "\n".join(found)


@pytest.mark.parametrize("caller", ["other", "admin"])
async def test_lists_and_counts_hold_only_the_callers_own_tasks(
    world: World, caller: Caller
) -> None:
    headers = world.headers(caller)
    assert (await world.api.client.get(TASKS, headers=headers)).json()["items"] == []
    stats = (await world.api.client.get(f"{TASKS}/stats", headers=headers)).json()
    assert stats["total"] == 0
    assert sum(stats["by_status"].values()) == sum(stats["by_priority"].values()) == 0
    owners = (await world.api.client.get(f"{TASKS}/stats", headers=world.headers("owner"))).json()
    assert owners["total"] == 1


async def test_a_demoted_admin_is_refused_every_admin_operation_at_once(
    world: World, api: Api, app: FastAPI
) -> None:
    demoted = await make_admin(api, app)
    calls = [await MATRIX[operation].build(world, "admin") for operation in ADMIN_ONLY]
    assert (await api.client.get(ADMIN_USERS, headers=demoted.headers)).status_code == 200
    response = await api.client.patch(
        f"{ADMIN_USERS}/{demoted.id}", json={"role": "user"}, headers=world.admin.headers
    )
    assert response.status_code == 200, response.text
    for call in calls:
        refused = await world.send(call, demoted.headers)
        assert refused.status_code == 403, (call, refused.text)
        assert refused.json()["code"] == "forbidden"
    # Still signed in, as the user the account now is.
    assert (await api.client.get(ME, headers=demoted.headers)).json()["role"] == "user"


async def test_a_deactivated_user_is_refused_every_operation_at_once(
    world: World, api: Api
) -> None:
    calls = [await MATRIX[operation].build(world, "owner") for operation in AUTHENTICATED]
    assert (await api.client.get(ME, headers=world.owner.headers)).status_code == 200
    response = await api.client.patch(
        f"{ADMIN_USERS}/{world.owner.id}", json={"is_active": False}, headers=world.admin.headers
    )
    assert response.status_code == 200, response.text
    for call in calls:
        headers = world.headers("owner") if call.headers is None else call.headers
        refused = await world.send(call, headers)
        assert refused.status_code == 401, (call, refused.text)
        assert refused.headers["www-authenticate"].startswith("Bearer ")
