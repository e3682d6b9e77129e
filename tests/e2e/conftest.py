"""Browser tests: Debian's Chromium, driven by Playwright, against a real `primetrade serve`.

One browser for the whole run and a new context (cookies, storage) per test. Every page
fails its test on an uncaught script error or a Content-Security-Policy violation, so each
flow also checks that the UI runs under the server's policy.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    async_playwright,
    expect,
)

from tests.conftest import IN_CI
from tests.e2e.served import ServedApp, serve
from tests.helpers import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
DESKTOP = {"width": 1280, "height": 800}
expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium (Playwright's own browser downloads are not used)."""
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"CI needs Chromium at {CHROMIUM}")
        pytest.skip(f"SKIPPED browser tests: no Chromium at {CHROMIUM}")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    """The server most tests share (SQLite, no rate limits, default token lifetimes)."""
    with serve(tmp_path_factory.mktemp("served")) as app:
        yield app


@dataclass
class PageProblems:
    """What a page reported that no flow should ever cause."""

    messages: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.messages.append(f"CSP violation: {message.text}")

    def page_error(self, error: Error) -> None:
        self.messages.append(f"uncaught script error: {error}")


def watch(page: Page, problems: PageProblems) -> Page:
    page.on("console", problems.console)
    page.on("pageerror", problems.page_error)
    return page


@pytest.fixture
def problems() -> Iterator[PageProblems]:
    found = PageProblems()
    yield found
    if found.messages:
        pytest.fail("\n".join(found.messages))


async def new_context(browser: Browser, app: ServedApp, **options: Any) -> BrowserContext:
    return await browser.new_context(**{"base_url": app.url, "viewport": DESKTOP, **options})


@pytest.fixture
async def context(browser: Browser, served: ServedApp) -> AsyncIterator[BrowserContext]:
    context = await new_context(browser, served)
    yield context
    await context.close()


@pytest.fixture
async def page(context: BrowserContext, problems: PageProblems) -> Page:
    return watch(await context.new_page(), problems)


async def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Through the login page, ending on the task list."""
    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", level=1, name="Tasks")).to_be_visible()


@pytest.fixture
def axe_script() -> str:
    """axe-core's source, from tests/e2e/node_modules (npm ci --prefix tests/e2e)."""
    path = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
    if not path.exists():
        hint = "run `npm ci --prefix tests/e2e`"
        if IN_CI:
            pytest.fail(f"CI needs axe-core at {path}: {hint}")
        npm = "npm is installed" if shutil.which("npm") else "npm is missing too"
        pytest.skip(f"SKIPPED accessibility checks: no axe-core at {path} ({npm}); {hint}")
    return path.read_text()
