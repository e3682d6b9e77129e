"""Signing in and staying signed in: silent refresh before the access token expires, one
refresh and a replay after a 401, the expired-session message once the session is revoked
elsewhere; the wrong-password and rate-limit messages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, Page, Request, Route, expect

from tests.e2e.conftest import PageProblems, new_context, sign_in, watch
from tests.e2e.served import ServedApp, serve
from tests.helpers import PASSWORD

pytestmark = pytest.mark.slow
TOKEN_SECONDS = 30  # the shortest access token the settings allow
REFRESH = "**/api/v1/auth/session/refresh"


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    with serve(tmp_path_factory.mktemp("short"), access_token_ttl_seconds=TOKEN_SECONDS) as app:
        yield app


@pytest.fixture(scope="module")
def rate_limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    root = tmp_path_factory.mktemp("limited")
    with serve(root, rate_limit_enabled=True, rate_limit_auth="3/day") as app:
        yield app


async def open_page(browser: Browser, app: ServedApp, problems: PageProblems) -> Page:
    context = await new_context(browser, app)
    return watch(await context.new_page(), problems)


async def test_the_session_refreshes_silently_and_ends_when_revoked_elsewhere(
    browser: Browser, short_lived: ServedApp, problems: PageProblems
) -> None:
    page = await open_page(browser, short_lived, problems)
    refreshes: list[Request] = []
    page.on(
        "request", lambda request: refreshes.append(request) if "refresh" in request.url else None
    )
    await page.clock.install()
    email = await short_lived.register()
    await sign_in(page, email)
    signed_in_refreshes = len(refreshes)  # the page load's attempt, before signing in

    # The page's clock passes the refresh point (a fifth of 30 s before expiry) at once.
    async with page.expect_response(REFRESH) as refreshed:
        await page.clock.fast_forward(TOKEN_SECONDS * 1000)
    assert (await refreshed.value).status == 200
    assert len(refreshes) == signed_in_refreshes + 1
    box = page.get_by_label("New task title")
    await box.fill("Still signed in")
    await box.press("Enter")
    await expect(page.get_by_role("button", name="Still signed in", exact=True)).to_be_visible()

    await replay_after_a_401(page, refreshes)

    other_device = await short_lived.bearer(email)
    async with short_lived.http() as http:
        revoked = await http.delete("/users/me/sessions", headers=other_device)
    assert revoked.status_code == 204, revoked.text
    await page.clock.fast_forward(TOKEN_SECONDS * 1000)
    await expect(page.get_by_text("Your session has expired, sign in again.")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/login\?next=%2Fstats$"))
    await expect(page.get_by_role("banner")).to_be_hidden()
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(r"/stats$"))
    await page.context.close()


async def replay_after_a_401(page: Page, refreshes: list[Request]) -> None:
    """The access token is refused once: the page refreshes it and sends the call again."""
    refused: list[str] = []

    async def refuse_once(route: Route) -> None:
        if refused:
            await route.continue_()
            return
        refused.append(route.request.url)
        await route.fulfill(
            status=401,
            content_type="application/problem+json",
            json={
                "type": "about:blank",
                "title": "Not authenticated",
                "status": 401,
                "code": "unauthorized",
            },
        )

    before = len(refreshes)
    await page.route("**/api/v1/tasks/stats*", refuse_once)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Stats").click()
    await expect(page.get_by_role("list", name="Summary")).to_contain_text("Tasks")
    assert len(refused) == 1
    assert len(refreshes) == before + 1


async def test_wrong_password_and_rate_limit_messages(
    browser: Browser, rate_limited: ServedApp, problems: PageProblems
) -> None:
    page = await open_page(browser, rate_limited, problems)
    email = await rate_limited.register()  # the first of three auth requests a day
    await page.goto("/login")  # its look for a session to restore is not counted
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill("not-the-password")
    sign_in_button = page.get_by_role("button", name="Sign in")
    await sign_in_button.click()  # the second
    await expect(page.get_by_role("alert")).to_have_text("The email or password is incorrect.")
    await sign_in_button.click()  # the third
    await expect(page.get_by_role("alert")).to_have_text("The email or password is incorrect.")

    await sign_in_button.click()
    message = page.get_by_role("alert").filter(has_text="Too many attempts")
    await expect(message).to_have_text(re.compile(r"Try again in \d+ seconds\."))
    await expect(sign_in_button).to_be_disabled()
    await page.context.close()
