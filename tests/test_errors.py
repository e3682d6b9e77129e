"""The error contract: every failure is RFC 9457 problem+json with a stable `code`, the right
status and headers, and a failed request leaves the data exactly as it was."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import ProgrammingError

from primetrade.app import create_app
from primetrade.tasks.repository import TaskRepository
from tests.conftest import asgi_client, make_settings
from tests.helpers import API, PASSWORD, PROBLEM, Account, Api

AppFactory = Callable[..., Awaitable[FastAPI]]
ME = f"{API}/users/me"
TASKS = f"{API}/tasks"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is a problem document for `status` and `code`, tied to its request."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"https://primetrade.dev/problems/{code.replace('_', '-')}"
    assert isinstance(body["title"], str)
    assert body["title"]
    assert body["instance"] == response.request.url.path
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def task_url(task_id: str) -> str:
    return f"{TASKS}/{task_id}"


async def my_tasks(client: httpx.AsyncClient, who: Account) -> list[dict[str, Any]]:
    response = await client.get(TASKS, params={"limit": 100}, headers=who.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def read_task(client: httpx.AsyncClient, who: Account, task_id: str) -> dict[str, Any]:
    response = await client.get(task_url(task_id), headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def me(client: httpx.AsyncClient, who: Account) -> dict[str, Any]:
    response = await client.get(ME, headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- 400 --------------------------------------------------------------------------------------


def _flip_middle(cursor: str) -> str:
    middle = len(cursor) // 2
    return cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1 :]


@pytest.mark.parametrize(
    ("label", "tamper", "params"),
    [
        ("one character changed", _flip_middle, {}),
        ("truncated", lambda cursor: cursor[:-6], {}),
        ("not base64 at all", lambda _cursor: "!!not-a-cursor!!", {}),
        ("made for another sort order", lambda cursor: cursor, {"sort": "title"}),
    ],
)
async def test_a_bad_cursor_is_400_invalid_cursor(
    api: Api,
    client: httpx.AsyncClient,
    label: str,
    tamper: Callable[[str], str],
    params: dict[str, str],
) -> None:
    alice = await api.account()
    for _ in range(3):
        await api.create_task(alice)
    first = (await api.list_tasks(alice, limit=1)).json()
    assert first["next_cursor"], label

    response = await api.list_tasks(alice, limit=1, cursor=tamper(first["next_cursor"]), **params)

    assert_problem(response, 400, "invalid_cursor")
    assert len(await my_tasks(client, alice)) == 3


# --- 401 --------------------------------------------------------------------------------------


def _claims(who: Account) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(who.access_token, options={"verify_signature": False})
    return claims


def _resigned(app: FastAPI, who: Account, **changes: Any) -> dict[str, str]:
    claims = {**_claims(who), **changes}
    token = jwt.encode(claims, app.state.runtime.settings.secret_key, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def _expired(app: FastAPI, who: Account) -> dict[str, str]:
    claims = _claims(who)
    day = 24 * 3600
    return _resigned(
        app, who, iat=claims["iat"] - day, nbf=claims["nbf"] - day, exp=claims["exp"] - day
    )


def _foreign_signature(_app: FastAPI, who: Account) -> dict[str, str]:
    token = jwt.encode(_claims(who), "another-secret-key-0123456789abcdef0123", algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def _unsigned(_app: FastAPI, who: Account) -> dict[str, str]:
    token = jwt.encode(_claims(who), key=None, algorithm="none")
    return {"Authorization": f"Bearer {token}"}


BAD_CREDENTIALS: list[Any] = [
    pytest.param(lambda app, who: {}, None, id="missing"),
    pytest.param(lambda app, who: {"Authorization": "Bearer"}, "invalid_request", id="empty"),
    pytest.param(
        lambda app, who: {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
        "invalid_request",
        id="not-bearer",
    ),
    pytest.param(
        lambda app, who: {"Authorization": "Bearer not.a.jwt"}, "invalid_token", id="malformed"
    ),
    pytest.param(_expired, "invalid_token", id="expired"),
    pytest.param(
        lambda app, who: _resigned(app, who, aud="someone-else"),
        "invalid_token",
        id="wrong-audience",
    ),
    pytest.param(
        lambda app, who: _resigned(app, who, iss="https://evil.example"),
        "invalid_token",
        id="wrong-issuer",
    ),
    pytest.param(
        lambda app, who: _resigned(app, who, typ="refresh"), "invalid_token", id="not-access-typ"
    ),
    pytest.param(_foreign_signature, "invalid_token", id="wrong-signature"),
    pytest.param(_unsigned, "invalid_token", id="alg-none"),
    pytest.param(
        lambda app, who: {"Authorization": f"Bearer {who.refresh_token}"},
        "invalid_token",
        id="refresh-token-as-access-token",
    ),
]


@pytest.mark.parametrize(("credentials", "challenge_error"), BAD_CREDENTIALS)
async def test_bad_credentials_are_401_with_a_bearer_challenge_and_write_nothing(
    app: FastAPI,
    api: Api,
    client: httpx.AsyncClient,
    credentials: Callable[[FastAPI, Account], dict[str, str]],
    challenge_error: str | None,
) -> None:
    alice = await api.account()

    response = await client.post(
        TASKS, json={"title": "Sneaked in"}, headers=credentials(app, alice)
    )

    assert_problem(response, 401, "unauthorized")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    if challenge_error is None:  # nothing sent: a bare challenge (RFC 6750, 3.1)
        assert "error=" not in challenge
    else:
        assert f'error="{challenge_error}"' in challenge
    assert await my_tasks(client, alice) == []


# --- 403 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/admin/users", None),
        ("GET", "/admin/tasks", None),
        ("GET", "/admin/users/{me}", None),
        ("PATCH", "/admin/users/{me}", {"role": "admin"}),
        ("DELETE", "/admin/users/{me}", None),
        ("GET", "/admin/tasks/{task}", None),
        ("PATCH", "/admin/tasks/{task}", {"title": "Changed by admin route"}),
        ("DELETE", "/admin/tasks/{task}", None),
    ],
)
async def test_a_plain_user_gets_403_on_admin_routes_and_nothing_changes(
    api: Api, client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    alice = await api.account()
    task = await api.create_task(alice, title="Mine")
    url = API + path.format(me=alice.id, task=task["id"])

    response = await client.request(method, url, json=body, headers=alice.headers)

    assert_problem(response, 403, "forbidden")
    profile = await me(client, alice)
    assert profile["role"] == "user"
    assert profile["is_active"] is True
    stored = await read_task(client, alice, task["id"])
    assert (stored["title"], stored["version"]) == ("Mine", 1)


# --- 404 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"{API}/no-such-thing"),
        ("POST", f"{API}/no-such-thing"),
        ("GET", f"{API}/tasks/5f76ebed-f118-4c69-98df-50fdf6414697/comments"),
        ("GET", "/no-such-page"),
    ],
)
async def test_an_unknown_route_is_404_problem(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    assert_problem(await client.request(method, path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "body"), [("GET", None), ("PATCH", {"title": "Hijacked"}), ("DELETE", None)]
)
async def test_another_users_task_is_the_same_404_as_a_missing_one(
    api: Api, client: httpx.AsyncClient, method: str, body: dict[str, Any] | None
) -> None:
    alice, bob = await api.account(), await api.account()
    task = await api.create_task(alice, title="Alice's")

    theirs = await client.request(method, task_url(task["id"]), json=body, headers=bob.headers)
    missing = await client.request(
        method, task_url(str(uuid.uuid4())), json=body, headers=bob.headers
    )

    for response in (theirs, missing):
        assert_problem(response, 404, "task_not_found")
    same = ("type", "title", "status", "code", "detail")
    assert {k: theirs.json()[k] for k in same} == {k: missing.json()[k] for k in same}
    assert "etag" not in theirs.headers
    stored = await read_task(client, alice, task["id"])
    assert (stored["title"], stored["version"]) == ("Alice's", 1)


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "42", "0" * 33, "1de0169c-2b0c-4bfe-983a"])
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_a_malformed_task_id_is_422_pointing_at_the_path(
    api: Api, client: httpx.AsyncClient, method: str, bad_id: str
) -> None:
    alice = await api.account()
    body = {"title": "x"} if method == "PATCH" else None

    response = await client.request(method, task_url(bad_id), json=body, headers=alice.headers)

    problem = assert_problem(response, 422, "validation_failed")
    assert [error["loc"] for error in problem["errors"]] == [["path", "task_id"]]


# --- 405 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/tasks", {"GET", "POST"}),
        ("PUT", "/tasks/{task}", {"GET", "PATCH", "DELETE"}),
        ("POST", "/tasks/{task}", {"GET", "PATCH", "DELETE"}),
        ("POST", "/users/me", {"GET", "PATCH"}),
        ("GET", "/auth/login", {"POST"}),
        ("PUT", "/auth/register", {"POST"}),
    ],
)
async def test_a_wrong_method_is_405_with_every_allowed_method(
    api: Api, client: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    alice = await api.account()
    task = await api.create_task(alice, title="Untouched")
    body = {"title": "Replaced"} if method in {"PUT", "POST"} else None

    response = await client.request(
        method, API + path.format(task=task["id"]), json=body, headers=alice.headers
    )

    assert_problem(response, 405, "method_not_allowed")
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed
    assert [t["title"] for t in await my_tasks(client, alice)] == ["Untouched"]


# --- 409 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("second", ["dup@example.com", "DUP@EXAMPLE.COM", "Dup@Example.Com"])
async def test_registering_a_taken_email_in_any_case_is_409(
    api: Api, client: httpx.AsyncClient, second: str
) -> None:
    await api.register("dup@example.com")

    response = await client.post(
        f"{API}/auth/register", json={"email": second, "password": "Other-password-7"}
    )

    assert_problem(response, 409, "email_taken")
    assert (await api.login("dup@example.com", "Other-password-7")).status_code == 401
    assert (await api.login("dup@example.com", PASSWORD)).status_code == 200


async def test_changing_to_a_taken_email_in_another_case_is_409(
    api: Api, client: httpx.AsyncClient
) -> None:
    await api.register("taken@example.com")
    bob = await api.account("bob@example.com")

    response = await client.patch(
        ME,
        json={"email": "Taken@Example.COM", "current_password": PASSWORD, "full_name": "Bobby"},
        headers=bob.headers,
    )

    assert_problem(response, 409, "email_taken")
    profile = await me(client, bob)
    assert (profile["email"], profile["full_name"]) == ("bob@example.com", None)


# --- 412 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "body"), [("PATCH", {"title": "Overwrites"}), ("DELETE", None)])
@pytest.mark.parametrize("if_match", ['"v1"', 'W/"v1"', '"v1", "v7"', '"garbage"'])
async def test_a_stale_if_match_is_412_and_changes_nothing(
    api: Api,
    client: httpx.AsyncClient,
    method: str,
    body: dict[str, Any] | None,
    if_match: str,
) -> None:
    alice = await api.account()
    task = await api.create_task(alice, title="First")
    moved = await client.patch(
        task_url(task["id"]), json={"title": "Second"}, headers=alice.headers
    )
    assert moved.headers["etag"] == '"v2"'

    response = await client.request(
        method, task_url(task["id"]), json=body, headers={**alice.headers, "If-Match": if_match}
    )

    assert_problem(response, 412, "version_mismatch")
    stored = await read_task(client, alice, task["id"])
    assert (stored["title"], stored["version"]) == ("Second", 2)


# --- 413 --------------------------------------------------------------------------------------

LIMIT = 1024


def task_body(size: int) -> bytes:
    """A valid task-creation JSON body of exactly `size` bytes."""
    empty = json.dumps({"title": "Big", "description": ""}).encode()
    return json.dumps({"title": "Big", "description": "x" * (size - len(empty))}).encode()


async def _chunks(body: bytes, size: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "streamed"])
async def test_a_body_over_the_limit_is_413_and_stores_nothing(
    app_factory: AppFactory, announced: bool
) -> None:
    application = await app_factory(max_body_bytes=LIMIT)
    async with asgi_client(application) as http:
        alice = await Api(http).account()
        body = task_body(LIMIT + 1)
        content: bytes | AsyncIterator[bytes] = body if announced else _chunks(body)
        headers = {**alice.headers, "Content-Type": "application/json"}

        response = await http.post(TASKS, content=content, headers=headers)

        assert ("content-length" in response.request.headers) is announced
        problem = assert_problem(response, 413, "payload_too_large")
        assert str(LIMIT) in problem["detail"]
        assert await my_tasks(http, alice) == []


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "streamed"])
async def test_a_body_exactly_at_the_limit_is_accepted(
    app_factory: AppFactory, announced: bool
) -> None:
    application = await app_factory(max_body_bytes=LIMIT)
    async with asgi_client(application) as http:
        alice = await Api(http).account()
        body = task_body(LIMIT)
        content: bytes | AsyncIterator[bytes] = body if announced else _chunks(body)
        headers = {**alice.headers, "Content-Type": "application/json"}

        response = await http.post(TASKS, content=content, headers=headers)

        assert response.status_code == 201, response.text
        assert len(await my_tasks(http, alice)) == 1


# --- 415 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", b'{"title": "Plain text"}'),
        ("application/x-www-form-urlencoded", b"title=Form"),
        ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="t"'),
        ("application/xml", b"<task><title>XML</title></task>"),
        (None, b'{"title": "No type"}'),
    ],
)
async def test_a_json_endpoint_refuses_other_media_types_with_415(
    api: Api, client: httpx.AsyncClient, content_type: str | None, content: bytes
) -> None:
    alice = await api.account()
    headers = dict(alice.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type

    response = await client.post(TASKS, content=content, headers=headers)

    problem = assert_problem(response, 415, "unsupported_media_type")
    assert "application/json" in problem["detail"]
    assert await my_tasks(client, alice) == []


async def test_registration_sent_as_a_form_is_415_and_creates_no_account(
    api: Api, client: httpx.AsyncClient
) -> None:
    form = {"email": "form@example.com", "password": PASSWORD}

    response = await client.post(f"{API}/auth/register", data=form)

    assert_problem(response, 415, "unsupported_media_type")
    assert (await api.login("form@example.com")).status_code == 401


async def test_the_form_only_token_endpoint_refuses_json_with_415(
    api: Api, client: httpx.AsyncClient
) -> None:
    user = await api.register()
    body = {"username": user["email"], "password": PASSWORD}

    response = await client.post(f"{API}/auth/token", json=body)

    problem = assert_problem(response, 415, "unsupported_media_type")
    assert "application/x-www-form-urlencoded" in problem["detail"]


# --- 422 --------------------------------------------------------------------------------------


def error_locations(problem: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-field errors by field name; every one says where and what."""
    found = {}
    for error in problem["errors"]:
        assert isinstance(error["loc"], list)
        assert error["loc"]
        assert isinstance(error["msg"], str)
        assert error["msg"]
        found[str(error["loc"][-1])] = error
    return found


async def test_an_invalid_task_lists_every_bad_field(api: Api, client: httpx.AsyncClient) -> None:
    alice = await api.account()
    body = {"title": "  ", "priority": "asap", "due_at": "tomorrow", "tags": "home"}

    response = await client.post(TASKS, json=body, headers=alice.headers)

    problem = assert_problem(response, 422, "validation_failed")
    assert set(error_locations(problem)) == {"title", "priority", "due_at", "tags"}
    assert await my_tasks(client, alice) == []


@pytest.mark.parametrize(
    ("content", "error_type"),
    [
        (b'{"title": ', "json_invalid"),
        (b"\xff\xfe{}", "json_invalid"),
        (b"[]", "model_attributes_type"),
        (b'"a title"', "model_attributes_type"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_422_on_the_body(
    api: Api, client: httpx.AsyncClient, content: bytes, error_type: str
) -> None:
    alice = await api.account()
    headers = {**alice.headers, "Content-Type": "application/json"}

    response = await client.post(TASKS, content=content, headers=headers)

    problem = assert_problem(response, 422, "validation_failed")
    assert [(error["loc"], error["type"]) for error in problem["errors"]] == [
        (["body"], error_type)
    ]
    assert await my_tasks(client, alice) == []


PRIVILEGED_TASK_FIELDS = ["owner_id", "id", "version", "role", "created_at", "completed_at"]


@pytest.mark.parametrize("field", PRIVILEGED_TASK_FIELDS)
async def test_creating_a_task_cannot_set_server_owned_fields(
    api: Api, client: httpx.AsyncClient, field: str
) -> None:
    alice, bob = await api.account(), await api.account()
    value = {"owner_id": bob.id, "role": "admin", "version": 99}.get(field, str(uuid.uuid4()))

    response = await client.post(TASKS, json={"title": "Mine", field: value}, headers=alice.headers)

    problem = assert_problem(response, 422, "validation_failed")
    assert error_locations(problem)[field]["type"] == "extra_forbidden"
    assert await my_tasks(client, alice) == []
    assert await my_tasks(client, bob) == []


@pytest.mark.parametrize("field", PRIVILEGED_TASK_FIELDS)
async def test_changing_a_task_cannot_set_server_owned_fields(
    api: Api, client: httpx.AsyncClient, field: str
) -> None:
    alice, bob = await api.account(), await api.account()
    task = await api.create_task(alice, title="Mine")
    value = {"owner_id": bob.id, "role": "admin", "version": 99}.get(field, str(uuid.uuid4()))

    response = await client.patch(
        task_url(task["id"]), json={"title": "Changed", field: value}, headers=alice.headers
    )

    problem = assert_problem(response, 422, "validation_failed")
    assert error_locations(problem)[field]["type"] == "extra_forbidden"
    stored = await read_task(client, alice, task["id"])
    assert (stored["id"], stored["title"], stored["version"]) == (task["id"], "Mine", 1)
    assert await my_tasks(client, bob) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("role", "admin"),
        ("is_active", False),
        ("id", "00000000-0000-0000-0000-000000000001"),
        ("password_hash", "$argon2id$forged"),
        ("created_at", "2000-01-01T00:00:00Z"),
    ],
)
async def test_a_profile_change_cannot_set_privileged_fields(
    api: Api, client: httpx.AsyncClient, field: str, value: Any
) -> None:
    alice = await api.account()
    before = await me(client, alice)

    response = await client.patch(
        ME, json={"full_name": "Alice", field: value}, headers=alice.headers
    )

    problem = assert_problem(response, 422, "validation_failed")
    assert error_locations(problem)[field]["type"] == "extra_forbidden"
    assert await me(client, alice) == before
    assert (await api.login(alice.email)).status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("role", "admin"),
        ("is_active", True),
        ("id", "00000000-0000-0000-0000-000000000001"),
        ("password_hash", "$argon2id$forged"),
    ],
)
async def test_registration_cannot_set_privileged_fields(
    api: Api, client: httpx.AsyncClient, field: str, value: Any
) -> None:
    body = {"email": "climber@example.com", "password": PASSWORD, field: value}

    response = await client.post(f"{API}/auth/register", json=body)

    problem = assert_problem(response, 422, "validation_failed")
    assert error_locations(problem)[field]["type"] == "extra_forbidden"
    # No account was made: the address is still free, and taking it gives a plain user.
    user = await api.register("climber@example.com")
    assert user["role"] == "user"
    assert user["id"] != "00000000-0000-0000-0000-000000000001"


# --- 429 --------------------------------------------------------------------------------------


def assert_rate_limited(response: httpx.Response, limit: int) -> None:
    assert_problem(response, 429, "rate_limited")
    assert int(response.headers["retry-after"]) >= 1
    assert int(response.headers["ratelimit-limit"]) == limit
    assert int(response.headers["ratelimit-remaining"]) == 0
    assert int(response.headers["ratelimit-reset"]) >= 0


async def test_anonymous_calls_over_the_limit_are_429_per_client_address(
    app_factory: AppFactory,
) -> None:
    application = await app_factory(rate_limit_enabled=True, rate_limit_anonymous="2/day")
    async with asgi_client(application, peer=("192.0.2.10", 5000)) as http:
        answers = [await http.get(TASKS) for _ in range(3)]
        assert [a.status_code for a in answers] == [401, 401, 429]
        assert [a.headers["ratelimit-remaining"] for a in answers[:2]] == ["1", "0"]
        assert_rate_limited(answers[2], 2)
    async with asgi_client(application, peer=("192.0.2.11", 5000)) as other:
        assert (await other.get(TASKS)).status_code == 401


async def test_registrations_over_the_auth_limit_are_429_and_create_nothing(
    app_factory: AppFactory,
) -> None:
    application = await app_factory(rate_limit_enabled=True, rate_limit_auth="2/day")
    async with asgi_client(application, peer=("192.0.2.20", 5000)) as http:
        api = Api(http)
        await api.register()
        await api.register()
        body = {"email": "third@example.com", "password": PASSWORD}
        assert_rate_limited(await http.post(f"{API}/auth/register", json=body), 2)
    async with asgi_client(application, peer=("192.0.2.21", 5000)) as other:
        # The refused registration left the address free.
        assert (await other.post(f"{API}/auth/register", json=body)).status_code == 201


async def test_a_signed_in_user_over_the_limit_is_429_and_writes_nothing(
    app_factory: AppFactory,
) -> None:
    application = await app_factory(rate_limit_enabled=True, rate_limit_user="3/day")
    async with asgi_client(application) as http:
        api = Api(http)
        alice = await api.account()
        await api.create_task(alice, title="One")
        await api.create_task(alice, title="Two")
        response = await http.get(TASKS, headers=alice.headers)
        assert response.headers["ratelimit-remaining"] == "0"

        refused = await http.post(TASKS, json={"title": "Three"}, headers=alice.headers)

        assert_rate_limited(refused, 3)
    # The limit is per user: a fresh app over the same data shows what was stored.
    reader = await app_factory()
    async with asgi_client(reader) as http:
        titles = {t["title"] for t in await my_tasks(http, alice)}
    assert titles == {"One", "Two"}


# --- 500 --------------------------------------------------------------------------------------

SECRETS = ("Traceback", "SELECT", "INSERT", "password_hash", "/srv/", ".py", "line 42")


def assert_nothing_leaks(response: httpx.Response) -> None:
    text = response.text
    for secret in SECRETS:
        assert secret not in text, secret
    for value in response.headers.values():
        for secret in SECRETS:
            assert secret not in value, secret


async def test_an_unexpected_exception_is_a_bare_500_with_the_request_id(
    app_factory: AppFactory,
) -> None:
    application = await app_factory()

    async def explode() -> None:
        raise RuntimeError('SELECT password_hash FROM users -- File "/srv/app/x.py", line 42')

    application.add_api_route(f"{API}/explode", explode)
    async with asgi_client(application) as http:
        response = await http.get(f"{API}/explode", headers={"X-Request-ID": "trace-me-500"})

    problem = assert_problem(response, 500, "internal_error")
    assert problem["request_id"] == "trace-me-500"
    assert problem["detail"] == "An unexpected error occurred."
    assert set(problem) == {"type", "title", "status", "code", "detail", "instance", "request_id"}
    assert_nothing_leaks(response)


async def test_a_database_error_is_a_500_that_hides_the_sql_and_stores_nothing(
    api: Api, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await api.account()

    async def broken_add(self: TaskRepository, task: Any) -> Any:
        raise ProgrammingError(
            "INSERT INTO tasks (password_hash) VALUES (?)",
            {"password_hash": "x"},
            Exception('File "/srv/primetrade/tasks/repository.py", line 42'),
        )

    monkeypatch.setattr(TaskRepository, "add", broken_add)
    response = await client.post(TASKS, json={"title": "Lost"}, headers=alice.headers)
    monkeypatch.undo()

    assert_problem(response, 500, "internal_error")
    assert_nothing_leaks(response)
    assert await my_tasks(client, alice) == []


# --- 503 --------------------------------------------------------------------------------------

UNREACHABLE_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:1/primetrade"


@pytest.fixture
async def cut_off() -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app whose database cannot be reached (nothing listens on its port)."""
    application = create_app(make_settings(UNREACHABLE_DATABASE))
    async with application.router.lifespan_context(application), asgi_client(application) as http:
        yield application, http


CREDENTIALS = {"email": "a@example.com", "password": PASSWORD}


@pytest.mark.parametrize(
    ("method", "path", "body", "signed_in"),
    [
        ("POST", f"{API}/auth/register", CREDENTIALS, False),
        ("POST", f"{API}/auth/login", CREDENTIALS, False),
        ("GET", TASKS, None, True),
        ("POST", TASKS, {"title": "Lost"}, True),
        ("GET", ME, None, True),
    ],
)
async def test_calls_that_need_an_unreachable_database_are_503_database_unavailable(
    cut_off: tuple[FastAPI, httpx.AsyncClient],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    signed_in: bool,
) -> None:
    application, http = cut_off
    headers = {}
    if signed_in:
        token = application.state.runtime.tokens.issue_access(uuid.uuid4(), uuid.uuid4())
        headers["Authorization"] = f"Bearer {token}"

    response = await http.request(method, path, json=body, headers=headers)

    problem = assert_problem(response, 503, "database_unavailable")
    assert int(response.headers["retry-after"]) >= 1
    assert problem["detail"]
    assert "127.0.0.1" not in response.text
    assert "postgres" not in response.text.lower()


async def test_probes_tell_liveness_from_readiness_when_the_database_is_away(
    cut_off: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = cut_off
    assert (await http.get("/health")).status_code == 200
    ready = await http.get("/ready")
    assert_problem(ready, 503, "not_ready")
    assert ready.json()["checks"] == {"database": "down"}
