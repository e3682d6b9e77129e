"""Welcome, email verification and password reset, with a real SMTP server and in-process
jobs, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from primetrade.accounts import service as accounts_service
from primetrade.kit.db import utcnow
from tests.conftest import DATABASE_LEGS, asgi_client
from tests.helpers import API, PASSWORD
from tests.jobsupport import Mailbox, app_builder, eventually, private_database, smtp_server
from tests.mailsupport import html_of, mail_to, received, settled, text_of, token_in

NEW_PASSWORD = "Another-horse-7"


@pytest.fixture(scope="module", params=DATABASE_LEGS)
def account_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    yield from private_database(request, tmp_path_factory)


@pytest.fixture
def mailbox() -> Iterator[tuple[str, Mailbox]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
async def apps(account_db: str) -> AsyncIterator[Callable[..., Awaitable[FastAPI]]]:
    async with app_builder(account_db) as build:
        yield build


@pytest.fixture
async def strict(
    apps: Callable[..., Awaitable[FastAPI]], mailbox: tuple[str, Mailbox]
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app that requires verified addresses, and a client for it."""
    app = await apps(
        mail_url=mailbox[0],
        require_email_verification=True,
        public_url="https://tasks.example.com",
    )
    async with asgi_client(app) as client:
        yield app, client


async def register(client: httpx.AsyncClient, email: str, **extra: Any) -> httpx.Response:
    body = {"email": email, "password": PASSWORD, **extra}
    return await client.post(f"{API}/auth/register", json=body)


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post(f"{API}/auth/login", json={"email": email, "password": password})


# --- Welcome ---------------------------------------------------------------------------------


async def test_registering_sends_one_welcome_email(apps: Any, mailbox: tuple[str, Mailbox]) -> None:
    app = await apps(mail_url=mailbox[0], public_url="https://tasks.example.com")
    async with asgi_client(app) as client:
        response = await register(client, "wendy@example.com", full_name="Wendy")
        assert response.status_code == 201  # verification off: today's answer
        assert (await login(client, "wendy@example.com")).status_code == 200
    await eventually(received(mailbox[1], "wendy@example.com"), "the welcome email")
    await settled(app)
    [message] = mail_to(mailbox[1], "wendy@example.com")
    assert message["Subject"] == "Welcome to PrimeTrade Tasks, Wendy"
    assert "https://tasks.example.com" in text_of(message)


# --- Verification ----------------------------------------------------------------------------


async def test_register_answers_alike_and_warns_the_owner(
    strict: tuple[FastAPI, httpx.AsyncClient], mailbox: tuple[str, Mailbox]
) -> None:
    app, client = strict
    first = await register(client, "olga@example.com")
    again = await register(client, "olga@example.com", full_name="Mallory")
    unknown = await register(client, "nobody-yet@example.com")
    assert first.status_code == again.status_code == unknown.status_code == 202
    assert first.json() == again.json() == unknown.json()
    assert first.headers.get("content-type") == again.headers.get("content-type")
    await eventually(received(mailbox[1], "olga@example.com", 2), "verification and warning")
    await settled(app)
    subjects = sorted(message["Subject"] for message in mail_to(mailbox[1], "olga@example.com"))
    assert subjects == [
        "Confirm your email address for PrimeTrade Tasks",
        "Someone tried to register with your email address",
    ]
    # A third attempt within the hour does not mail the owner again.
    await register(client, "olga@example.com")
    await settled(app)
    assert len(mail_to(mailbox[1], "olga@example.com")) == 2


async def test_login_waits_for_the_link_which_works_once(
    strict: tuple[FastAPI, httpx.AsyncClient], mailbox: tuple[str, Mailbox]
) -> None:
    app, client = strict
    await register(client, "vera@example.com")
    await eventually(received(mailbox[1], "vera@example.com"), "the verification email")
    [message] = mail_to(mailbox[1], "vera@example.com")
    assert 'href="https://tasks.example.com/verify-email?token=' in html_of(message)
    refused = await login(client, "vera@example.com")
    assert refused.status_code == 403
    assert refused.json()["code"] == "email_not_verified"
    # A wrong password still gets the ordinary 401: the 403 needs the right one.
    wrong = await login(client, "vera@example.com", "Wrong-password-1")
    assert wrong.status_code == 401
    token = token_in(message)
    verified = await client.post(f"{API}/auth/verify-email", json={"token": token})
    assert verified.status_code == 204
    assert (await login(client, "vera@example.com")).status_code == 200
    reused = await client.post(f"{API}/auth/verify-email", json={"token": token})
    assert reused.status_code == 400
    assert reused.json()["code"] == "invalid_token"
    # Verified: now the welcome email comes.
    await eventually(received(mailbox[1], "vera@example.com", 2), "the welcome email")
    await settled(app)


async def test_an_expired_verification_link_is_refused_and_resend_answers_alike(
    strict: tuple[FastAPI, httpx.AsyncClient],
    mailbox: tuple[str, Mailbox],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, client = strict
    await register(client, "ed@example.com")
    await eventually(received(mailbox[1], "ed@example.com"), "the verification email")
    token = token_in(mail_to(mailbox[1], "ed@example.com")[0])
    ttl = app.state.runtime.settings.email_verification_ttl_seconds
    later = utcnow() + timedelta(seconds=ttl + 1)
    monkeypatch.setattr(accounts_service, "utcnow", lambda: later)
    expired = await client.post(f"{API}/auth/verify-email", json={"token": token})
    assert expired.status_code == 400
    assert expired.json()["code"] == "invalid_token"
    known = await client.post(f"{API}/auth/verify-email/resend", json={"email": "ed@example.com"})
    unknown = await client.post(
        f"{API}/auth/verify-email/resend", json={"email": "ghost@example.com"}
    )
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    await eventually(received(mailbox[1], "ed@example.com", 2), "a fresh verification email")
    fresh = token_in(mail_to(mailbox[1], "ed@example.com")[1])
    ok = await client.post(f"{API}/auth/verify-email", json={"token": fresh})
    assert ok.status_code == 204
    await settled(app)
    assert mail_to(mailbox[1], "ghost@example.com") == []


# --- Changing the address --------------------------------------------------------------------


async def _verified_session(
    client: httpx.AsyncClient, mailbox: Mailbox, email: str
) -> dict[str, Any]:
    """Register, follow the verification link and sign in: the token pair."""
    await register(client, email)
    await eventually(received(mailbox, email), "the verification email")
    token = token_in(mail_to(mailbox, email)[0])
    assert (await client.post(f"{API}/auth/verify-email", json={"token": token})).status_code == 204
    signed_in = await login(client, email)
    assert signed_in.status_code == 200, signed_in.text
    pair: dict[str, Any] = signed_in.json()
    return pair


async def _change_email(client: httpx.AsyncClient, pair: dict[str, Any], email: str) -> None:
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    body = {"email": email, "current_password": PASSWORD}
    changed = await client.patch(f"{API}/users/me", json=body, headers=headers)
    assert changed.status_code == 200, changed.text


async def test_a_changed_address_is_proven_again_without_ending_the_session(
    strict: tuple[FastAPI, httpx.AsyncClient], mailbox: tuple[str, Mailbox]
) -> None:
    app, client = strict
    pair = await _verified_session(client, mailbox[1], "hana@example.com")
    await _change_email(client, pair, "hana@new.example.com")
    await eventually(received(mailbox[1], "hana@new.example.com"), "the new verification email")
    [message] = mail_to(mailbox[1], "hana@new.example.com")
    assert message["Subject"] == "Confirm your email address for PrimeTrade Tasks"
    # The open session goes on; a new sign-in waits for the link, as after registering.
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await client.get(f"{API}/users/me", headers=headers)).status_code == 200
    refreshed = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    refused = await login(client, "hana@new.example.com")
    assert refused.status_code == 403
    assert refused.json()["code"] == "email_not_verified"
    verified = await client.post(f"{API}/auth/verify-email", json={"token": token_in(message)})
    assert verified.status_code == 204
    assert (await login(client, "hana@new.example.com")).status_code == 200
    await settled(app)
    # One welcome in all: it came with the first verification, not again with this one.
    welcomes = [m for m in mailbox[1].messages if m["Subject"].startswith("Welcome")]
    assert [m["To"] for m in welcomes] == ["hana@example.com"]


async def test_a_link_mailed_to_the_old_address_stops_working(
    strict: tuple[FastAPI, httpx.AsyncClient], mailbox: tuple[str, Mailbox]
) -> None:
    app, client = strict
    pair = await _verified_session(client, mailbox[1], "ivo@example.com")
    await client.post(f"{API}/auth/password-reset", json={"email": "ivo@example.com"})
    await eventually(received(mailbox[1], "ivo@example.com", 3), "the reset email")
    [reset] = [m for m in mail_to(mailbox[1], "ivo@example.com") if "Reset" in m["Subject"]]
    await _change_email(client, pair, "ivo@new.example.com")
    body = {"token": token_in(reset), "new_password": NEW_PASSWORD}
    stale = await client.post(f"{API}/auth/password-reset/confirm", json=body)
    assert stale.status_code == 400
    assert stale.json()["code"] == "invalid_token"
    # Redeeming it would have proven the new address without anybody reading its mail.
    assert (await login(client, "ivo@new.example.com")).json()["code"] == "email_not_verified"
    await settled(app)


# --- Password reset --------------------------------------------------------------------------


async def _signed_in_twice(client: httpx.AsyncClient, email: str) -> list[dict[str, Any]]:
    await register(client, email)
    return [(await login(client, email)).json() for _ in range(2)]


async def test_reset_answers_alike_and_ends_every_session(
    apps: Any, mailbox: tuple[str, Mailbox]
) -> None:
    app = await apps(mail_url=mailbox[0])
    async with asgi_client(app) as client:
        sessions = await _signed_in_twice(client, "rita@example.com")
        known = await client.post(f"{API}/auth/password-reset", json={"email": "rita@example.com"})
        unknown = await client.post(
            f"{API}/auth/password-reset", json={"email": "nobody@example.com"}
        )
        assert known.status_code == unknown.status_code == 202
        assert known.json() == unknown.json()
        await eventually(received(mailbox[1], "rita@example.com", 2), "the reset email")
        [reset] = [m for m in mail_to(mailbox[1], "rita@example.com") if "Reset" in m["Subject"]]
        token = token_in(reset)
        body = {"token": token, "new_password": NEW_PASSWORD}
        confirmed = await client.post(f"{API}/auth/password-reset/confirm", json=body)
        assert confirmed.status_code == 204
        again = await client.post(f"{API}/auth/password-reset/confirm", json=body)
        assert again.status_code == 400
        assert (await login(client, "rita@example.com")).status_code == 401
        assert (await login(client, "rita@example.com", NEW_PASSWORD)).status_code == 200
        for pair in sessions:
            headers = {"Authorization": f"Bearer {pair['access_token']}"}
            assert (await client.get(f"{API}/users/me", headers=headers)).status_code == 401
            refreshed = await client.post(
                f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]}
            )
            assert refreshed.status_code == 401
        await settled(app)
    assert mail_to(mailbox[1], "nobody@example.com") == []


async def test_reset_links_expire_and_new_passwords_follow_the_policy(
    apps: Any, mailbox: tuple[str, Mailbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await apps(mail_url=mailbox[0], password_reset_ttl_seconds=600)
    async with asgi_client(app) as client:
        await register(client, "pat@example.com")
        await client.post(f"{API}/auth/password-reset", json={"email": "pat@example.com"})
        await eventually(received(mailbox[1], "pat@example.com", 2), "the reset email")
        [reset] = [m for m in mail_to(mailbox[1], "pat@example.com") if "Reset" in m["Subject"]]
        token = token_in(reset)
        url = f"{API}/auth/password-reset/confirm"
        weak = await client.post(url, json={"token": token, "new_password": "short"})
        assert weak.status_code == 422
        assert [error["loc"][-1] for error in weak.json()["errors"]] == ["new_password"]
        same_as_email = await client.post(
            url, json={"token": token, "new_password": "pat@example.com"}
        )
        assert same_as_email.status_code == 422
        assert same_as_email.json()["errors"][0]["loc"] == ["new_password"]
        later = utcnow() + timedelta(seconds=601)
        monkeypatch.setattr(accounts_service, "utcnow", lambda: later)
        expired = await client.post(url, json={"token": token, "new_password": NEW_PASSWORD})
        assert expired.status_code == 400
        assert expired.json()["code"] == "invalid_token"
        assert (await login(client, "pat@example.com")).status_code == 200
        await settled(app)


async def test_reset_and_verification_requests_count_against_the_auth_rate_limit(
    apps: Any, mailbox: tuple[str, Mailbox]
) -> None:
    app = await apps(mail_url=mailbox[0], rate_limit_enabled=True, rate_limit_auth="2/day")
    async with asgi_client(app) as client:
        body = {"email": "flood@example.com"}
        answers = [
            (await client.post(f"{API}/auth/password-reset", json=body)).status_code,
            (await client.post(f"{API}/auth/verify-email/resend", json=body)).status_code,
            (await client.post(f"{API}/auth/password-reset", json=body)).status_code,
        ]
        confirm = {"token": "x" * 43, "new_password": NEW_PASSWORD}
        refused = await client.post(f"{API}/auth/password-reset/confirm", json=confirm)
    assert answers == [202, 202, 429]
    assert refused.status_code == 429
    await settled(app)
