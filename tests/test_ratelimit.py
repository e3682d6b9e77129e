"""Rate limits as a client meets them: whose budget a call spends, and how a refusal reads.

Every window here is a day long, so no test ever straddles a window edge and nothing waits on
the clock; expiry is the `limits` library's business and is not re-tested here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import asgi_client
from tests.helpers import API, PASSWORD, PROBLEM, Account, Api

AppFactory = Callable[..., Awaitable[FastAPI]]
TASKS = f"{API}/tasks"
LOGIN = f"{API}/auth/login"
WRONG_PASSWORD = "Wrong-password-1"
RATELIMIT_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")
CLIENT_A = ("198.51.100.1", 50001)
CLIENT_B = ("198.51.100.2", 50002)
PROXY = ("10.0.0.1", 40000)
GENEROUS = "1000/day"
DAY = 86400


async def limited_app(app_factory: AppFactory, **policies: Any) -> FastAPI:
    """An app with rate limits on: the policies given, every other one generous."""
    settings: dict[str, Any] = {
        "rate_limit_enabled": True,
        "rate_limit_anonymous": GENEROUS,
        "rate_limit_user": GENEROUS,
        "rate_limit_auth": GENEROUS,
        "rate_limit_login_failures": GENEROUS,
    }
    return await app_factory(**{**settings, **policies})


def bearer(who: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {who.access_token}"}


def forwarded(chain: str) -> dict[str, str]:
    return {"X-Forwarded-For": chain}


def quota(response: httpx.Response) -> tuple[int, int, int]:
    """(limit, remaining, reset) from the RateLimit fields, each a non-negative integer."""
    values = [response.headers[name] for name in RATELIMIT_HEADERS]
    assert all(value.isdigit() for value in values), values
    limit, remaining, reset = (int(value) for value in values)
    assert reset <= DAY
    return limit, remaining, reset


def assert_limited(response: httpx.Response, limit: int) -> None:
    """A 429 problem that says when to retry and which quota ran out."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert (body["status"], body["code"]) == (429, "rate_limited")
    assert body["instance"] == response.request.url.path
    assert body["request_id"] == response.headers["x-request-id"]
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit(), retry_after
    assert 1 <= int(retry_after) <= DAY
    assert quota(response)[:2] == (limit, 0)


def assert_not_limited(response: httpx.Response) -> None:
    assert response.status_code != 429, response.text
    assert "retry-after" not in response.headers


async def sign_in(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await http.post(LOGIN, json={"email": email, "password": password})


# --- whose budget a call spends ------------------------------------------------------------


async def test_anonymous_calls_share_a_budget_per_client_address(app_factory: AppFactory) -> None:
    app = await limited_app(app_factory, rate_limit_anonymous="3/day")
    async with asgi_client(app, peer=CLIENT_A) as a, asgi_client(app, peer=CLIENT_B) as b:
        remaining = [quota(await a.get(TASKS))[1] for _ in range(3)]
        assert remaining == [2, 1, 0]
        assert_limited(await a.get(TASKS), limit=3)
        # The same address on another port is the same client.
        async with asgi_client(app, peer=(CLIENT_A[0], 60000)) as same_host:
            assert_limited(await same_host.get(f"{API}/users/me"), limit=3)
        response = await b.get(TASKS)
        assert response.status_code == 401, response.text
        assert quota(response)[:2] == (3, 2)


async def test_signed_in_calls_share_a_budget_per_user_across_addresses(
    api: Api, app_factory: AppFactory
) -> None:
    alice, bob = await api.account(), await api.account()
    app = await limited_app(app_factory, rate_limit_user="3/day")
    async with asgi_client(app, peer=CLIENT_A) as a, asgi_client(app, peer=CLIENT_B) as b:
        assert (await a.get(TASKS, headers=bearer(alice))).status_code == 200
        assert (await a.get(TASKS, headers=bearer(alice))).status_code == 200
        last = await b.get(TASKS, headers=bearer(alice))
        assert last.status_code == 200, last.text
        assert quota(last)[:2] == (3, 0)
        assert_limited(await b.get(TASKS, headers=bearer(alice)), limit=3)
        assert_limited(await a.get(f"{API}/users/me", headers=bearer(alice)), limit=3)
        # Another user on the same address is untouched, and so is the address itself.
        response = await a.get(TASKS, headers=bearer(bob))
        assert response.status_code == 200, response.text
        assert quota(response)[:2] == (3, 2)
        assert (await a.get(TASKS)).status_code == 401


async def test_an_invalid_token_spends_the_address_budget(app_factory: AppFactory) -> None:
    """Junk tokens cannot buy fresh budgets: without a valid token the address pays."""
    app = await limited_app(app_factory, rate_limit_anonymous="2/day")
    async with asgi_client(app, peer=CLIENT_A) as a:
        for token in ("junk-1", "junk-2"):
            response = await a.get(TASKS, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, response.text
        assert_limited(await a.get(TASKS, headers={"Authorization": "Bearer junk-3"}), limit=2)
        assert_limited(await a.get(TASKS), limit=2)


async def test_sign_in_endpoints_have_a_stricter_budget_per_address(
    api: Api, app_factory: AppFactory
) -> None:
    alice = await api.account()
    app = await limited_app(app_factory, rate_limit_auth="4/day")
    async with asgi_client(app, peer=CLIENT_A) as a:
        register = await a.post(
            f"{API}/auth/register", json={"email": "new@example.com", "password": PASSWORD}
        )
        assert register.status_code == 201, register.text
        assert (await sign_in(a, alice.email)).status_code == 200
        form = {"username": alice.email, "password": PASSWORD}
        token = await a.post(f"{API}/auth/token", data=form)
        assert token.status_code == 200, token.text
        refresh = {"refresh_token": alice.refresh_token}
        assert (await a.post(f"{API}/auth/refresh", json=refresh)).status_code == 200
        # All four spent the one sign-in budget of this address, whatever the outcome.
        assert_limited(await sign_in(a, alice.email), limit=4)
        assert_limited(await a.post(f"{API}/auth/token", data=form), limit=4)
        assert_limited(await a.post(f"{API}/auth/refresh", json=refresh), limit=4)
        # Ordinary calls, signing out included, are not sign-ins.
        assert_not_limited(await a.get(TASKS, headers=bearer(alice)))
        assert_not_limited(await a.get(TASKS))
        pair = token.json()
        logout = await a.post(
            f"{API}/auth/logout",
            json={"refresh_token": pair["refresh_token"]},
            headers={"Authorization": f"Bearer {pair['access_token']}"},
        )
        assert logout.status_code == 204, logout.text
    async with asgi_client(app, peer=CLIENT_B) as b:
        assert (await sign_in(b, alice.email)).status_code == 200


async def test_sign_in_responses_describe_the_budget_closest_to_running_out(
    api: Api, app_factory: AppFactory
) -> None:
    """A client pacing itself by the RateLimit fields must see the sign-in budget there."""
    alice = await api.account()
    app = await limited_app(app_factory, rate_limit_auth="2/day", rate_limit_anonymous="50/day")
    async with asgi_client(app, peer=CLIENT_A) as a:
        first = await sign_in(a, alice.email)
        assert first.status_code == 200, first.text
        assert quota(first)[:2] == (2, 1)
        second = await sign_in(a, alice.email)
        assert quota(second)[:2] == (2, 0)
        assert_limited(await sign_in(a, alice.email), limit=2)
        # Elsewhere the address budget is the one that applies.
        assert quota(await a.get(TASKS))[:2] == (50, 47)


# --- failed sign-ins -----------------------------------------------------------------------


async def test_failed_sign_ins_lock_that_email_from_that_address(
    api: Api, app_factory: AppFactory
) -> None:
    alice, bob = await api.account(), await api.account()
    app = await limited_app(app_factory, rate_limit_login_failures="3/day")
    async with asgi_client(app, peer=CLIENT_A) as a:
        for _ in range(3):
            assert (await sign_in(a, alice.email, WRONG_PASSWORD)).status_code == 401
        # Now even the right password waits, in either sign-in flow and in any letter case.
        assert_limited(await sign_in(a, alice.email), limit=3)
        form = {"username": alice.email.upper(), "password": PASSWORD}
        assert_limited(await a.post(f"{API}/auth/token", data=form), limit=3)
        # Other accounts from this address are not locked out.
        assert (await sign_in(a, bob.email)).status_code == 200
        # The account is not locked for everyone: signed-in sessions go on.
        assert (await a.get(TASKS, headers=bearer(alice))).status_code == 200
    async with asgi_client(app, peer=CLIENT_B) as b:
        assert (await sign_in(b, alice.email)).status_code == 200


async def test_a_successful_sign_in_does_not_forgive_earlier_failures(
    api: Api, app_factory: AppFactory
) -> None:
    """The policy counts failed sign-ins per window (RATE_LIMIT_LOGIN_FAILURES); a success in
    between does not clear them, so guessing cannot be reset by signing in to a known account."""
    alice = await api.account()
    app = await limited_app(app_factory, rate_limit_login_failures="3/day")
    async with asgi_client(app, peer=CLIENT_A) as a:
        for _ in range(2):
            assert (await sign_in(a, alice.email, WRONG_PASSWORD)).status_code == 401
        assert (await sign_in(a, alice.email)).status_code == 200
        assert (await sign_in(a, alice.email, WRONG_PASSWORD)).status_code == 401
        assert_limited(await sign_in(a, alice.email), limit=3)


# --- the client address behind proxies -----------------------------------------------------


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(app_factory: AppFactory) -> None:
    app = await limited_app(app_factory, rate_limit_anonymous="2/day", trusted_proxies=[PROXY[0]])
    async with asgi_client(app, peer=CLIENT_A) as a:
        for spoofed in ("203.0.113.1", "203.0.113.2"):
            assert (await a.get(TASKS, headers=forwarded(spoofed))).status_code == 401
        assert_limited(await a.get(TASKS, headers=forwarded("203.0.113.3")), limit=2)
        assert_limited(await a.get(TASKS), limit=2)
    async with asgi_client(app, peer=("203.0.113.1", 50000)) as spoofed_client:
        # The address named in the spoofed header was never charged.
        assert quota(await spoofed_client.get(TASKS))[:2] == (2, 1)


async def test_behind_a_trusted_proxy_the_right_most_untrusted_address_is_the_client(
    app_factory: AppFactory,
) -> None:
    app = await limited_app(
        app_factory, rate_limit_anonymous="2/day", trusted_proxies=["10.0.0.0/8"]
    )
    async with asgi_client(app, peer=PROXY) as proxy:
        # "spoofed, real": the client made up the first entry, the proxy appended the second.
        first = await proxy.get(TASKS, headers=forwarded("203.0.113.7, 192.0.2.10"))
        assert quota(first)[:2] == (2, 1)
        # Through a second trusted hop the real client is still 192.0.2.10.
        second = await proxy.get(TASKS, headers=forwarded("203.0.113.8, 192.0.2.10, 10.0.0.2"))
        assert quota(second)[:2] == (2, 0)
        assert_limited(await proxy.get(TASKS, headers=forwarded("192.0.2.10")), limit=2)
        # Another client of the same proxy has its own budget, whatever it claims to be.
        other = await proxy.get(TASKS, headers=forwarded("192.0.2.10, 192.0.2.11"))
        assert other.status_code == 401, other.text
        assert quota(other)[:2] == (2, 1)
        # The proxy's own address was never the key.
        assert quota(await proxy.get(TASKS))[:2] == (2, 1)


async def test_failed_sign_ins_behind_a_proxy_count_against_the_real_client(
    api: Api, app_factory: AppFactory
) -> None:
    """One client guessing cannot lock an account for everyone behind the same proxy."""
    alice = await api.account()
    app = await limited_app(
        app_factory, rate_limit_login_failures="2/day", trusted_proxies=[PROXY[0]]
    )
    guesser, owner = forwarded("192.0.2.20"), forwarded("192.0.2.21")
    payload = {"email": alice.email, "password": WRONG_PASSWORD}
    async with asgi_client(app, peer=PROXY) as proxy:
        for _ in range(2):
            assert (await proxy.post(LOGIN, json=payload, headers=guesser)).status_code == 401
        correct = {"email": alice.email, "password": PASSWORD}
        assert_limited(await proxy.post(LOGIN, json=correct, headers=guesser), limit=2)
        response = await proxy.post(LOGIN, json=correct, headers=owner)
        assert response.status_code == 200, response.text


# --- what is never limited -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics", "/openapi.json"])
async def test_operations_endpoints_are_not_rate_limited(
    app_factory: AppFactory, path: str
) -> None:
    app = await limited_app(app_factory, rate_limit_anonymous="1/day")
    async with asgi_client(app, peer=CLIENT_A) as a:
        for _ in range(3):
            response = await a.get(path)
            assert response.status_code == 200, response.text
            assert not any(name in response.headers for name in RATELIMIT_HEADERS)
        # Nor did they spend the address's API budget.
        assert quota(await a.get(TASKS))[:2] == (1, 0)


async def test_disabled_rate_limits_limit_nothing(api: Api, app_factory: AppFactory) -> None:
    alice = await api.account()
    app = await app_factory(
        rate_limit_enabled=False,
        rate_limit_anonymous="1/day",
        rate_limit_user="1/day",
        rate_limit_auth="1/day",
        rate_limit_login_failures="1/day",
    )
    async with asgi_client(app, peer=CLIENT_A) as a:
        responses = [await a.get(TASKS) for _ in range(3)]
        responses += [await a.get(TASKS, headers=bearer(alice)) for _ in range(3)]
        responses += [await sign_in(a, alice.email, WRONG_PASSWORD) for _ in range(3)]
        responses.append(await sign_in(a, alice.email))
        assert [r.status_code for r in responses] == [401] * 3 + [200] * 3 + [401] * 3 + [200]
        for response in responses:
            assert_not_limited(response)
            assert not any(name in response.headers for name in RATELIMIT_HEADERS)
