"""A page open through a deploy: once the server no longer has the page's build, the next
link loads the page in full (the new build), once, never in a loop."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, Route, expect

from tests.e2e.conftest import sign_in
from tests.e2e.served import ServedApp

pytestmark = pytest.mark.slow
PROBE = "**/assets/*/favicon.svg"


async def gone_for_scripts(route: Route) -> None:
    """The server after the deploy, for the page's own requests (the tab icon is kept)."""
    if route.request.resource_type == "fetch":
        await route.fulfill(status=404)
    else:
        await route.continue_()


async def test_an_outdated_page_reloads_once_on_the_next_link(
    page: Page, served: ServedApp
) -> None:
    await sign_in(page, await served.register())
    nav = page.get_by_role("navigation", name="Main")
    async with page.expect_response(PROBE) as probe:
        await nav.get_by_role("link", name="Stats").click()
    assert (await probe.value).status == 200  # the current build: nothing to do

    await page.route(PROBE, gone_for_scripts)
    await page.evaluate("window.loadedBeforeTheDeploy = true")  # gone with a full load
    await nav.get_by_role("link", name="Tasks").click()
    await expect(page.locator("html[data-outdated]")).to_be_attached()
    assert await page.evaluate("window.loadedBeforeTheDeploy")
    await nav.get_by_role("link", name="Stats").click()
    await expect(page.get_by_role("heading", level=1, name="Stats")).to_be_visible()
    assert await page.evaluate("window.loadedBeforeTheDeploy") is None

    # The page came back in the same build (a server not yet updated): no second reload.
    await page.evaluate("window.loadedAgain = true")
    await nav.get_by_role("link", name="Tasks").click()
    await expect(page.locator("html[data-outdated]")).to_be_attached()
    await nav.get_by_role("link", name="Stats").click()
    await expect(page).to_have_url(re.compile(r"/stats$"))
    await expect(page.get_by_role("heading", level=1, name="Stats")).to_be_visible()
    assert await page.evaluate("window.loadedAgain")
