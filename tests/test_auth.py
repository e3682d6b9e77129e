"""Registration, sign-in, refresh-token rotation and sign-out, as a client sees them."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import select, update

from primetrade.auth.models import AuthSession
from primetrade.auth.passwords import HASHING_NICENESS, PasswordHasher
from primetrade.auth.tokens import LEEWAY_SECONDS
from primetrade.kit.db import utcnow
from primetrade.settings import Settings
from primetrade.users.models import User
from tests.conftest import asgi_client
from tests.helpers import API, PASSWORD, Account, Api, assert_problem, bearer, error_fields

SECRET = "test-secret-key-0123456789abcdef0123456789"
USER_FIELDS = {"id", "email", "full_name", "role", "is_active", "created_at", "updated_at"}


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(f"{API}/users/me", headers=bearer(token))


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(f"{API}/auth/refresh", json={"refresh_token": token})


async def set_sessions(app: FastAPI, user_id: str, **values: Any) -> None:
    """Edit a user's sign-in sessions in place (to age them without sleeping)."""
    async with app.state.runtime.engine.begin() as connection:
        await connection.execute(
            update(AuthSession).where(AuthSession.user_id == uuid.UUID(user_id)).values(**values)
        )


async def user_row(app: FastAPI, email: str) -> Any:
    async with app.state.runtime.engine.connect() as connection:
        return (await connection.execute(select(User).where(User.email == email))).one()


# --- registration -------------------------------------------------------------------------


async def test_register_returns_the_public_user(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/auth/register",
        json={"email": "reg@example.com", "password": PASSWORD, "full_name": "  Reg User "},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["email"] == "reg@example.com"
    assert body["full_name"] == "Reg User"
    assert body["role"] == "user"
    assert body["is_active"] is True
    uuid.UUID(body["id"])
    assert "password" not in response.text
    assert "argon2" not in response.text


async def test_register_normalises_the_email(api: Api) -> None:
    user = await api.register("  Alice@Example.COM ")
    assert user["email"] == "alice@example.com"


async def test_register_same_email_in_other_case_is_taken(
    api: Api, client: httpx.AsyncClient, app: FastAPI
) -> None:
    await api.register("alice@example.com")
    response = await client.post(
        f"{API}/auth/register", json={"email": "Alice@Example.com", "password": PASSWORD}
    )
    assert_problem(response, 409, "email_taken")
    async with app.state.runtime.engine.connect() as connection:
        rows = (await connection.execute(select(User.id))).all()
    assert len(rows) == 1


async def test_simultaneous_registrations_of_one_email_make_one_account(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    responses = await asyncio.gather(
        *(
            client.post(f"{API}/auth/register", json={"email": email, "password": PASSWORD})
            for email in ("race@example.com", "RACE@example.com", "Race@Example.com")
        )
    )
    assert sorted(response.status_code for response in responses) == [201, 409, 409]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "email_taken")
    async with app.state.runtime.engine.connect() as connection:
        assert len((await connection.execute(select(User.id))).all()) == 1


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("Abcde1!", id="7-chars"),
        pytest.param("Aa1" + "x" * 126, id="129-chars"),
        pytest.param("onlylowercase", id="lower-only"),
        pytest.param("ONLYUPPERCASE", id="upper-only"),
        pytest.param("1234567890", id="digits-only"),
        pytest.param("!@#$%^&*()", id="symbols-only"),
        pytest.param("", id="empty"),
    ],
)
async def test_register_rejects_weak_password(
    client: httpx.AsyncClient, app: FastAPI, password: str
) -> None:
    response = await client.post(
        f"{API}/auth/register", json={"email": "weak@example.com", "password": password}
    )
    body = assert_problem(response, 422, "validation_failed")
    assert error_fields(body) == {"password"}
    async with app.state.runtime.engine.connect() as connection:
        assert (await connection.execute(select(User.id))).first() is None


async def test_register_rejects_password_equal_to_email(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/auth/register",
        json={"email": "same@example.com", "password": "Same@Example.com"},
    )
    body = assert_problem(response, 422, "validation_failed")
    assert error_fields(body) == {"password"}


@pytest.mark.parametrize("password", ["abcdefg1", "Aa1" + "x" * 125], ids=["8-chars", "128-chars"])
async def test_register_accepts_password_at_the_length_limits(api: Api, password: str) -> None:
    user = await api.register(password=password)
    assert (await api.login(user["email"], password)).status_code == 200


@pytest.mark.parametrize(
    "extra", [{"role": "admin"}, {"id": str(uuid.uuid4())}, {"is_active": False}]
)
async def test_register_refuses_unknown_fields(
    client: httpx.AsyncClient, api: Api, extra: dict[str, Any]
) -> None:
    payload = {"email": "sneaky@example.com", "password": PASSWORD, **extra}
    response = await client.post(f"{API}/auth/register", json=payload)
    body = assert_problem(response, 422, "validation_failed")
    assert error_fields(body) == set(extra)
    assert (await api.login("sneaky@example.com")).status_code == 401


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "not-an-email", "password": PASSWORD},
        {"password": PASSWORD},
        {"email": "x@example.com"},
        {"email": "x@example.com", "password": PASSWORD, "full_name": "   "},
    ],
    ids=["bad-email", "no-email", "no-password", "blank-name"],
)
async def test_register_rejects_invalid_body(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    response = await client.post(f"{API}/auth/register", json=payload)
    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"]


async def test_password_is_stored_as_argon2id(api: Api, app: FastAPI) -> None:
    user = await api.register("hash@example.com")
    row = await user_row(app, user["email"])
    assert row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash


# --- login ----------------------------------------------------------------------------------


async def test_login_returns_a_bearer_token_pair(api: Api, app: FastAPI) -> None:
    user = await api.register()
    response = await api.login(user["email"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == app.state.runtime.settings.access_token_ttl_seconds
    assert body["refresh_token"] != body["access_token"]


async def test_access_token_carries_the_pinned_claims(api: Api) -> None:
    user = await api.register()
    token = (await api.login(user["email"])).json()["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(
        token, SECRET, algorithms=["HS256"], audience="primetrade-api", issuer="primetrade"
    )
    assert claims["sub"] == user["id"]
    assert claims["typ"] == "access"
    uuid.UUID(claims["sid"])
    assert claims["jti"]
    assert claims["exp"] - claims["iat"] == 900


async def test_each_login_is_a_separate_session(api: Api) -> None:
    user = await api.register()
    first = (await api.login(user["email"])).json()["access_token"]
    second = (await api.login(user["email"])).json()["access_token"]
    first_claims = jwt.decode(first, options={"verify_signature": False})
    second_claims = jwt.decode(second, options={"verify_signature": False})
    assert first_claims["sid"] != second_claims["sid"]
    assert first_claims["jti"] != second_claims["jti"]


async def test_login_email_is_case_insensitive(api: Api) -> None:
    await api.register("carol@example.com")
    response = await api.login("  CAROL@Example.com ")
    assert response.status_code == 200, response.text


async def test_login_failures_look_identical(api: Api, app: FastAPI) -> None:
    await api.register("known@example.com")
    await api.register("gone@example.com")
    async with app.state.runtime.engine.begin() as connection:
        await connection.execute(
            update(User).where(User.email == "gone@example.com").values(is_active=False)
        )
    responses = [
        await api.login("nobody@example.com"),
        await api.login("known@example.com", "Wrong-password-1"),
        await api.login("gone@example.com"),
    ]
    seen = set()
    for response in responses:
        body = assert_problem(response, 401, "unauthorized")
        seen.add(
            (
                response.status_code,
                body["code"],
                body["title"],
                body["detail"],
                response.headers["www-authenticate"],
            )
        )
    assert len(seen) == 1


async def test_login_rejects_unknown_fields(client: httpx.AsyncClient, api: Api) -> None:
    user = await api.register()
    response = await client.post(
        f"{API}/auth/login",
        json={"email": user["email"], "password": PASSWORD, "role": "admin"},
    )
    assert_problem(response, 422, "validation_failed")


async def test_token_endpoint_accepts_the_oauth2_password_form(
    client: httpx.AsyncClient, api: Api
) -> None:
    user = await api.register()
    response = await client.post(
        f"{API}/auth/token",
        data={"grant_type": "password", "username": user["email"], "password": PASSWORD},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert (await me(client, body["access_token"])).json()["id"] == user["id"]


async def test_token_endpoint_refuses_wrong_password_like_login(
    client: httpx.AsyncClient, api: Api
) -> None:
    user = await api.register()
    form = await client.post(
        f"{API}/auth/token", data={"username": user["email"], "password": "Wrong-password-1"}
    )
    login = await api.login(user["email"], "Wrong-password-1")
    form_body = assert_problem(form, 401, "unauthorized")
    login_body = assert_problem(login, 401, "unauthorized")
    assert form_body["detail"] == login_body["detail"]


async def test_token_endpoint_needs_a_form(client: httpx.AsyncClient, api: Api) -> None:
    user = await api.register()
    response = await client.post(
        f"{API}/auth/token", json={"username": user["email"], "password": PASSWORD}
    )
    assert_problem(response, 415, "unsupported_media_type")


async def test_token_endpoint_refuses_other_grant_types(
    client: httpx.AsyncClient, api: Api
) -> None:
    user = await api.register()
    response = await client.post(
        f"{API}/auth/token",
        data={"grant_type": "client_credentials", "username": user["email"], "password": PASSWORD},
    )
    assert_problem(response, 422, "validation_failed")


def test_passwords_are_hashed_with_owasps_argon2id_profile_by_default() -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (defaults.password_hash_memory_kib, defaults.password_hash_time_cost) == (19456, 2)


async def test_login_rehashes_a_hash_made_with_other_parameters(api: Api, app: FastAPI) -> None:
    user = await api.register()
    settings = app.state.runtime.settings
    other = PasswordHash((Argon2Hasher(time_cost=3, memory_cost=2048, parallelism=1),))
    async with app.state.runtime.engine.begin() as connection:
        await connection.execute(
            update(User)
            .where(User.email == user["email"])
            .values(password_hash=other.hash(PASSWORD))
        )
    assert (await api.login(user["email"])).status_code == 200
    upgraded = (await user_row(app, user["email"])).password_hash
    assert upgraded.startswith("$argon2id$")
    current = f"m={settings.password_hash_memory_kib},t={settings.password_hash_time_cost}"
    assert current in upgraded
    assert (await api.login(user["email"])).status_code == 200


@pytest.fixture
async def throttled(
    app_factory: Callable[..., Awaitable[FastAPI]],
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app with rate limits on and three failed sign-ins allowed per address and email."""
    application = await app_factory(rate_limit_enabled=True, rate_limit_login_failures="3/day")
    async with asgi_client(application) as http:
        yield application, http


async def test_repeated_failed_sign_ins_are_throttled(
    throttled: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = throttled
    api = Api(http)
    user = await api.register()
    for _ in range(3):
        assert_problem(await api.login(user["email"], "Wrong-password-1"), 401, "unauthorized")
    # Now even the right password waits: guessing cannot go on.
    response = await api.login(user["email"])
    assert_problem(response, 429, "rate_limited")
    assert int(response.headers["retry-after"]) >= 1
    # Another account from the same address is not locked out.
    other = await api.register()
    assert (await api.login(other["email"])).status_code == 200


async def test_unknown_emails_are_throttled_like_real_ones(
    throttled: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = throttled
    api = Api(http)
    for _ in range(3):
        assert_problem(await api.login("ghost@example.com"), 401, "unauthorized")
    assert_problem(await api.login("ghost@example.com"), 429, "rate_limited")


# --- timing equalisation -------------------------------------------------------------------


@pytest.fixture
def verify_calls(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The stored hash passed to every password verification (None: no such account)."""
    calls: list[str | None] = []
    original = PasswordHasher.verify

    async def spy(self: PasswordHasher, password: str, hashed: str | None) -> Any:
        calls.append(hashed)
        return await original(self, password, hashed)

    monkeypatch.setattr(PasswordHasher, "verify", spy)
    return calls


@pytest.fixture
def argon2_runs(monkeypatch: pytest.MonkeyPatch, app: FastAPI) -> list[str]:
    """Every Argon2 verification actually computed."""
    runs: list[str] = []
    hasher = app.state.runtime.hasher.hasher
    original = hasher.verify_and_update

    def spy(password: str, hashed: str) -> Any:
        runs.append(hashed)
        return original(password, hashed)

    monkeypatch.setattr(hasher, "verify_and_update", spy)
    return runs


async def test_unknown_email_still_verifies_a_hash(
    api: Api, verify_calls: list[str | None], argon2_runs: list[str]
) -> None:
    response = await api.login("nobody@example.com")
    assert response.status_code == 401
    assert verify_calls == [None]
    assert len(argon2_runs) == 1
    assert argon2_runs[0].startswith("$argon2id$")


async def test_wrong_password_verifies_once(
    api: Api, app: FastAPI, verify_calls: list[str | None], argon2_runs: list[str]
) -> None:
    user = await api.register()
    response = await api.login(user["email"], "Wrong-password-1")
    assert response.status_code == 401
    stored = (await user_row(app, user["email"])).password_hash
    assert verify_calls == [stored]
    assert argon2_runs == [stored]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority is Linux's")
async def test_hashing_runs_below_the_priority_of_request_handling() -> None:
    hasher = PasswordHasher(1, time_cost=1, memory_kib=1024)
    try:
        own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        hashing = await hasher._run(
            lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        )
        assert hashing == min(own + HASHING_NICENESS, 19)
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # untouched
        assert (await hasher.verify(PASSWORD, await hasher.hash(PASSWORD)))[0]
        hasher.close()  # as an app's shutdown does; an app started again hashes again
        assert (await hasher.verify(PASSWORD, await hasher.hash(PASSWORD)))[0]
    finally:
        hasher.close()


async def test_empty_stored_hash_never_matches() -> None:
    hasher = PasswordHasher(1, time_cost=1, memory_kib=1024)
    ok, _ = await hasher.verify("primetrade-dummy-password-for-timing", "")
    assert ok is False


# --- refresh --------------------------------------------------------------------------------


async def test_refresh_rotates_the_pair(client: httpx.AsyncClient, api: Api) -> None:
    alice = await api.account()
    response = await refresh(client, alice.refresh_token)
    assert response.status_code == 200, response.text
    pair = response.json()
    assert pair["token_type"] == "bearer"
    assert pair["refresh_token"] != alice.refresh_token
    assert pair["access_token"] != alice.access_token
    assert (await me(client, pair["access_token"])).json()["id"] == alice.id
    assert (await refresh(client, pair["refresh_token"])).status_code == 200


async def test_refreshed_access_token_stays_in_the_same_session(
    client: httpx.AsyncClient, api: Api
) -> None:
    alice = await api.account()
    pair = (await refresh(client, alice.refresh_token)).json()
    old = jwt.decode(alice.access_token, options={"verify_signature": False})
    new = jwt.decode(pair["access_token"], options={"verify_signature": False})
    assert old["sid"] == new["sid"]


async def test_rotated_refresh_token_no_longer_works(client: httpx.AsyncClient, api: Api) -> None:
    alice = await api.account()
    assert (await refresh(client, alice.refresh_token)).status_code == 200
    assert_problem(await refresh(client, alice.refresh_token), 401, "unauthorized")


async def test_reused_refresh_token_revokes_the_whole_family(
    client: httpx.AsyncClient, api: Api
) -> None:
    alice = await api.account()
    newest = (await refresh(client, alice.refresh_token)).json()
    assert_problem(await refresh(client, alice.refresh_token), 401, "unauthorized")
    assert_problem(await refresh(client, newest["refresh_token"]), 401, "unauthorized")
    assert_problem(await me(client, newest["access_token"]), 401, "unauthorized")
    assert_problem(await me(client, alice.access_token), 401, "unauthorized")


async def test_reuse_in_one_session_spares_the_users_other_sessions(
    client: httpx.AsyncClient, api: Api
) -> None:
    alice = await api.account()
    other = (await api.login(alice.email)).json()
    await refresh(client, alice.refresh_token)
    await refresh(client, alice.refresh_token)
    assert (await me(client, other["access_token"])).status_code == 200
    assert (await refresh(client, other["refresh_token"])).status_code == 200


async def test_simultaneous_refreshes_count_as_reuse(client: httpx.AsyncClient, api: Api) -> None:
    alice = await api.account()
    responses = await asyncio.gather(
        refresh(client, alice.refresh_token), refresh(client, alice.refresh_token)
    )
    assert sorted(response.status_code for response in responses) == [200, 401]
    [winner] = [response for response in responses if response.status_code == 200]
    assert_problem(await refresh(client, winner.json()["refresh_token"]), 401, "unauthorized")


@pytest.mark.parametrize("token", ["not-a-refresh-token", "x" * 256])
async def test_unknown_refresh_token_is_refused(client: httpx.AsyncClient, token: str) -> None:
    assert_problem(await refresh(client, token), 401, "unauthorized")


@pytest.mark.parametrize("payload", [{}, {"refresh_token": ""}, {"refresh_token": "x" * 257}])
async def test_refresh_rejects_invalid_body(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    response = await client.post(f"{API}/auth/refresh", json=payload)
    assert_problem(response, 422, "validation_failed")


async def test_access_token_is_not_a_refresh_token(client: httpx.AsyncClient, api: Api) -> None:
    alice = await api.account()
    # A JWT is longer than any refresh token, so the request schema already refuses it.
    body = assert_problem(await refresh(client, alice.access_token), 422, "validation_failed")
    assert error_fields(body) == {"refresh_token"}
    assert (await me(client, alice.access_token)).status_code == 200


async def test_session_idle_too_long_cannot_refresh(
    client: httpx.AsyncClient, api: Api, app: FastAPI
) -> None:
    alice = await api.account()
    idle = app.state.runtime.settings.refresh_token_idle_seconds
    await set_sessions(app, alice.id, last_used_at=utcnow() - timedelta(seconds=idle + 1))
    assert_problem(await refresh(client, alice.refresh_token), 401, "unauthorized")


async def test_session_used_within_the_idle_window_refreshes(
    client: httpx.AsyncClient, api: Api, app: FastAPI
) -> None:
    alice = await api.account()
    idle = app.state.runtime.settings.refresh_token_idle_seconds
    await set_sessions(app, alice.id, last_used_at=utcnow() - timedelta(seconds=idle - 60))
    assert (await refresh(client, alice.refresh_token)).status_code == 200


async def test_refresh_resets_the_idle_clock(
    client: httpx.AsyncClient, api: Api, app: FastAPI
) -> None:
    alice = await api.account()
    idle = app.state.runtime.settings.refresh_token_idle_seconds
    await set_sessions(app, alice.id, last_used_at=utcnow() - timedelta(seconds=idle - 60))
    pair = (await refresh(client, alice.refresh_token)).json()
    async with app.state.runtime.engine.connect() as connection:
        last_used = (await connection.execute(select(AuthSession.last_used_at))).scalar_one()
    assert utcnow() - last_used < timedelta(seconds=60)
    assert (await refresh(client, pair["refresh_token"])).status_code == 200


async def test_session_past_its_absolute_end_cannot_refresh(
    client: httpx.AsyncClient, api: Api, app: FastAPI
) -> None:
    alice = await api.account()
    await set_sessions(app, alice.id, expires_at=utcnow() - timedelta(seconds=1))
    assert_problem(await refresh(client, alice.refresh_token), 401, "unauthorized")
    assert_problem(await me(client, alice.access_token), 401, "unauthorized")


async def test_refresh_does_not_extend_the_absolute_lifetime(
    client: httpx.AsyncClient, api: Api, app: FastAPI
) -> None:
    alice = await api.account()
    ttl = app.state.runtime.settings.refresh_token_ttl_seconds
    async with app.state.runtime.engine.connect() as connection:
        before = (await connection.execute(select(AuthSession))).one()
    assert before.expires_at - before.created_at == timedelta(seconds=ttl)
    await refresh(client, alice.refresh_token)
    async with app.state.runtime.engine.connect() as connection:
        after = (await connection.execute(select(AuthSession))).one()
    assert after.expires_at == before.expires_at


@pytest.fixture
async def short_client(
    app_factory: Callable[..., Awaitable[FastAPI]],
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app whose sessions idle out after 60 s and end after 120 s."""
    application = await app_factory(refresh_token_idle_seconds=60, refresh_token_ttl_seconds=120)
    async with asgi_client(application) as http:
        yield application, http


async def test_configured_idle_lifetime_is_honoured(
    short_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    application, http = short_client
    alice = await Api(http).account()
    await set_sessions(application, alice.id, last_used_at=utcnow() - timedelta(seconds=61))
    assert_problem(await refresh(http, alice.refresh_token), 401, "unauthorized")


async def test_configured_absolute_lifetime_is_honoured(
    short_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    application, http = short_client
    alice = await Api(http).account()
    async with application.state.runtime.engine.connect() as connection:
        row = (await connection.execute(select(AuthSession))).one()
    assert row.expires_at - row.created_at == timedelta(seconds=120)
    # Used a moment ago, so not idle, but its absolute end has passed.
    await set_sessions(application, alice.id, expires_at=utcnow() - timedelta(seconds=1))
    assert_problem(await refresh(http, alice.refresh_token), 401, "unauthorized")


# --- logout ---------------------------------------------------------------------------------


async def logout(client: httpx.AsyncClient, who: Account, refresh_token: str) -> httpx.Response:
    return await client.post(
        f"{API}/auth/logout", json={"refresh_token": refresh_token}, headers=who.headers
    )


async def test_logout_ends_the_access_and_refresh_tokens(
    client: httpx.AsyncClient, api: Api
) -> None:
    alice = await api.account()
    response = await logout(client, alice, alice.refresh_token)
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await me(client, alice.access_token), 401, "unauthorized")
    assert_problem(await refresh(client, alice.refresh_token), 401, "unauthorized")


async def test_logout_leaves_other_sessions_signed_in(client: httpx.AsyncClient, api: Api) -> None:
    alice = await api.account()
    other = (await api.login(alice.email)).json()
    assert (await logout(client, alice, alice.refresh_token)).status_code == 204
    assert (await me(client, other["access_token"])).status_code == 200
    assert (await refresh(client, other["refresh_token"])).status_code == 200


async def test_logout_after_refresh_ends_the_rotated_family(
    client: httpx.AsyncClient, api: Api
) -> None:
    alice = await api.account()
    pair = (await refresh(client, alice.refresh_token)).json()
    alice.headers = bearer(pair["access_token"])
    assert (await logout(client, alice, pair["refresh_token"])).status_code == 204
    assert_problem(await me(client, pair["access_token"]), 401, "unauthorized")
    assert_problem(await me(client, alice.access_token), 401, "unauthorized")
    assert_problem(await refresh(client, pair["refresh_token"]), 401, "unauthorized")


async def test_logout_needs_the_access_token(client: httpx.AsyncClient, api: Api) -> None:
    alice = await api.account()
    response = await client.post(f"{API}/auth/logout", json={"refresh_token": alice.refresh_token})
    assert_problem(response, 401, "unauthorized")
    assert (await refresh(client, alice.refresh_token)).status_code == 200


async def test_logout_refuses_another_users_refresh_token(
    client: httpx.AsyncClient, api: Api
) -> None:
    alice = await api.account()
    bob = await api.account()
    assert_problem(await logout(client, alice, bob.refresh_token), 401, "unauthorized")
    assert (await refresh(client, bob.refresh_token)).status_code == 200
    assert (await me(client, alice.access_token)).status_code == 200


async def test_logout_refuses_an_unknown_refresh_token(client: httpx.AsyncClient, api: Api) -> None:
    alice = await api.account()
    assert_problem(await logout(client, alice, "not-a-refresh-token"), 401, "unauthorized")
    assert (await me(client, alice.access_token)).status_code == 200


async def test_logout_denylists_the_access_token_until_it_would_expire(
    client: httpx.AsyncClient, api: Api, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await api.account()
    store = app.state.runtime.revocations
    revoked: list[tuple[str, int]] = []
    original = store.revoke

    async def spy(token_id: str, ttl_seconds: int) -> None:
        revoked.append((token_id, ttl_seconds))
        await original(token_id, ttl_seconds)

    monkeypatch.setattr(store, "revoke", spy)
    assert (await logout(client, alice, alice.refresh_token)).status_code == 204
    claims = jwt.decode(alice.access_token, options={"verify_signature": False})
    [(token_id, ttl)] = revoked
    assert token_id == claims["jti"]
    # At least until expiry plus the leeway that decoding still grants.
    assert ttl >= claims["exp"] - int(utcnow().timestamp()) + LEEWAY_SECONDS
    assert await store.is_revoked(claims["jti"])


# --- caching --------------------------------------------------------------------------------


async def test_auth_responses_are_not_cached(client: httpx.AsyncClient, api: Api) -> None:
    user = await api.register()
    responses = [
        await api.login(user["email"]),
        await api.login(user["email"], "Wrong-password-1"),
        await client.post(
            f"{API}/auth/token", data={"username": user["email"], "password": PASSWORD}
        ),
        await client.post(
            f"{API}/auth/register", json={"email": "nc@example.com", "password": PASSWORD}
        ),
    ]
    pair = responses[0].json()
    responses.append(await refresh(client, pair["refresh_token"]))
    for response in responses:
        assert response.headers["cache-control"] == "no-store", response.url
