"""Signing in from the web app: the refresh token lives in an HttpOnly cookie.

What a browser relies on: the page never sees the refresh token, the cookie rotates with each
refresh and dies with sign-out, a rotated cookie replayed ends the session, and a request
another site makes the browser send is refused before it touches anything.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from primetrade.auth.models import AuthSession
from primetrade.kit.db import session_scope
from tests.conftest import asgi_client
from tests.helpers import API, PASSWORD, Api, assert_problem, bearer

SESSION = f"{API}/auth/session"
SAME_ORIGIN = {"X-Requested-With": "primetrade"}
COOKIE = "primetrade_refresh"


def cookie_header(response: httpx.Response) -> dict[str, str]:
    """The Set-Cookie header of the response, as attribute → value (lower-case names)."""
    [raw] = response.headers.get_list("set-cookie")
    first, *attributes = (part.strip() for part in raw.split(";"))
    name, _, value = first.partition("=")
    parsed = {"name": name, "value": value}
    for attribute in attributes:
        key, _, setting = attribute.partition("=")
        parsed[key.lower()] = setting
    return parsed


def holding(browser: httpx.AsyncClient, value: str) -> None:
    """The browser's cookie jar holds just this refresh cookie."""
    browser.cookies.clear()
    browser.cookies.set(COOKIE, value, path=SESSION)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        SESSION, json={"email": email, "password": password}, headers=SAME_ORIGIN
    )


async def sessions_of(app: FastAPI) -> int:
    async with session_scope(app.state.runtime.sessions) as session:
        return int(await session.scalar(select(func.count()).select_from(AuthSession)) or 0)


async def test_sign_in_keeps_the_refresh_token_out_of_the_page(
    api: Api, client: httpx.AsyncClient
) -> None:
    user = await api.register()
    response = await sign_in(client, user["email"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    cookie = cookie_header(response)
    assert cookie["name"] == COOKIE
    assert len(cookie["value"]) >= 32
    assert cookie["path"] == SESSION
    assert {"httponly", "samesite"} <= set(cookie)
    assert cookie["samesite"] == "Strict"
    assert int(cookie["max-age"]) > 0
    assert "secure" not in cookie  # plain HTTP here; see the TLS test
    assert response.headers["cache-control"] == "no-store"
    me = await client.get(f"{API}/users/me", headers=bearer(body["access_token"]))
    assert me.json()["email"] == user["email"]


async def test_over_tls_the_cookie_is_secure(app: FastAPI, api: Api) -> None:
    user = await api.register()
    async with asgi_client(app, base_url="https://testserver") as tls:
        response = await sign_in(tls, user["email"])
    assert "secure" in cookie_header(response)


async def test_refresh_rotates_the_cookie_and_a_replayed_one_ends_the_session(
    app: FastAPI, api: Api
) -> None:
    user = await api.register()
    async with asgi_client(app) as browser:
        first = cookie_header(await sign_in(browser, user["email"]))["value"]
        refreshed = await browser.post(f"{SESSION}/refresh", headers=SAME_ORIGIN)
        assert refreshed.status_code == 200, refreshed.text
        second = cookie_header(refreshed)["value"]
        assert second != first
        assert browser.cookies[COOKIE] == second
        token = refreshed.json()["access_token"]
        assert (await browser.get(f"{API}/users/me", headers=bearer(token))).status_code == 200

        # The old cookie again (stolen, say): the whole session ends, the new cookie too.
        holding(browser, first)
        replay = await browser.post(f"{SESSION}/refresh", headers=SAME_ORIGIN)
        assert_problem(replay, 401, "unauthorized")
        assert cookie_header(replay)["max-age"] == "0"
        holding(browser, second)
        after = await browser.post(f"{SESSION}/refresh", headers=SAME_ORIGIN)
        assert_problem(after, 401)
        assert (await browser.get(f"{API}/users/me", headers=bearer(token))).status_code == 401


async def test_refresh_without_a_cookie_is_a_401_that_says_sign_in(client: httpx.AsyncClient):
    response = await client.post(f"{SESSION}/refresh", headers=SAME_ORIGIN)
    body = assert_problem(response, 401)
    assert "sign in" in body["detail"]


async def test_sign_out_ends_the_session_and_clears_the_cookie(app: FastAPI, api: Api) -> None:
    user = await api.register()
    async with asgi_client(app) as browser:
        token = (await sign_in(browser, user["email"])).json()["access_token"]
        out = await browser.delete(SESSION, headers={**SAME_ORIGIN, **bearer(token)})
        assert out.status_code == 204
        assert cookie_header(out)["max-age"] == "0"
        assert COOKIE not in browser.cookies
        assert (await browser.get(f"{API}/users/me", headers=bearer(token))).status_code == 401
        again = await browser.post(f"{SESSION}/refresh", headers=SAME_ORIGIN)
        assert_problem(again, 401)


async def test_sign_out_with_an_expired_access_token_still_ends_the_session(
    app: FastAPI, api: Api
) -> None:
    user = await api.register()
    async with asgi_client(app) as browser:
        await sign_in(browser, user["email"])
        cookie = browser.cookies[COOKIE]
        out = await browser.delete(SESSION, headers={**SAME_ORIGIN, **bearer("not.a.token")})
        assert out.status_code == 204
        holding(browser, cookie)
        refused = await browser.post(f"{SESSION}/refresh", headers=SAME_ORIGIN)
        assert_problem(refused, 401)


async def test_a_wrong_password_gets_the_same_answer_as_the_json_sign_in(
    api: Api, client: httpx.AsyncClient
) -> None:
    user = await api.register()
    browser = await sign_in(client, user["email"], "Wrong-password-1")
    programs = await api.login(user["email"], "Wrong-password-1")
    body = assert_problem(browser, 401)
    assert "set-cookie" not in browser.headers
    assert {k: v for k, v in body.items() if k not in ("instance", "request_id")} == {
        k: v for k, v in programs.json().items() if k not in ("instance", "request_id")
    }


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-custom-header"),
        pytest.param({"X-Requested-With": "XMLHttpRequest"}, id="another-custom-value"),
        pytest.param({**SAME_ORIGIN, "Sec-Fetch-Site": "cross-site"}, id="cross-site-fetch"),
        pytest.param({**SAME_ORIGIN, "Sec-Fetch-Site": "same-site"}, id="sibling-subdomain"),
        pytest.param({**SAME_ORIGIN, "Origin": "https://evil.example"}, id="foreign-origin"),
        pytest.param({**SAME_ORIGIN, "Origin": "null"}, id="opaque-origin"),
    ],
)
async def test_a_cross_site_request_is_refused_and_changes_nothing(
    app: FastAPI, api: Api, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    user = await api.register()
    before = await sessions_of(app)
    response = await client.post(
        SESSION, json={"email": user["email"], "password": PASSWORD}, headers=headers
    )
    assert_problem(response, 403, "csrf_rejected")
    assert "set-cookie" not in response.headers
    assert await sessions_of(app) == before
    # Refresh and sign-out are guarded the same way.
    for method, path in (("POST", f"{SESSION}/refresh"), ("DELETE", SESSION)):
        answer = await client.request(method, path, headers=headers)
        assert_problem(answer, 403, "csrf_rejected")


@pytest.mark.parametrize(
    "origin", ["http://testserver", "https://app.example"], ids=["own", "cors-allowed"]
)
async def test_the_apps_own_and_allowed_origins_may_sign_in(app_factory: Any, origin: str) -> None:
    application = await app_factory(cors_origins=["https://app.example"])
    async with asgi_client(application) as browser:
        user = await Api(browser).register()
        response = await browser.post(
            SESSION,
            json={"email": user["email"], "password": PASSWORD},
            headers={**SAME_ORIGIN, "Origin": origin, "Sec-Fetch-Site": "same-origin"},
        )
    assert response.status_code == 200, response.text


async def test_signing_out_other_sessions_keeps_this_one(app: FastAPI, api: Api) -> None:
    account = await api.account()
    async with asgi_client(app) as laptop, asgi_client(app) as phone:
        await sign_in(laptop, account.email)
        await sign_in(phone, account.email)
        answer = await laptop.delete(f"{API}/users/me/sessions", headers=account.headers)
        assert answer.status_code == 204
        for browser in (laptop, phone):
            assert_problem(await browser.post(f"{SESSION}/refresh", headers=SAME_ORIGIN), 401)
    # The session that asked goes on.
    assert (await api.client.get(f"{API}/users/me", headers=account.headers)).status_code == 200
    refreshed = await api.client.post(
        f"{API}/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert refreshed.status_code == 200


async def test_signing_out_other_sessions_needs_a_signed_in_user(client: httpx.AsyncClient):
    assert_problem(await client.delete(f"{API}/users/me/sessions"), 401)


async def test_sign_in_is_throttled_but_the_refresh_every_page_load_makes_is_not(
    app_factory: Any,
) -> None:
    application = await app_factory(rate_limit_enabled=True, rate_limit_auth="3/day")
    async with asgi_client(application) as browser:
        user = await Api(browser).register()  # one of the three
        assert (await sign_in(browser, user["email"])).status_code == 200
        for _ in range(5):  # five page loads in a row
            response = await browser.post(f"{SESSION}/refresh", headers=SAME_ORIGIN)
            assert response.status_code == 200, response.text
        assert (await sign_in(browser, user["email"])).status_code == 200
        assert_problem(await sign_in(browser, user["email"]), 429, "rate_limited")
