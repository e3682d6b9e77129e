"""The main flow once more with the server on PostgreSQL (the rest of the browser suite runs
on SQLite: the UI is the same, and the API's engines are covered by the API suite)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.async_api import Page, expect

from tests.conftest import PostgresDatabases
from tests.e2e.conftest import sign_in
from tests.e2e.served import ServedApp, serve

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture(scope="module")
def on_postgres(
    postgres_databases: PostgresDatabases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedApp]:
    url = postgres_databases.create()
    try:
        with serve(tmp_path_factory.mktemp("postgres"), database_url=url) as app:
            yield app
    finally:
        postgres_databases.drop(url)


@pytest.fixture
def served(on_postgres: ServedApp) -> ServedApp:
    """The page fixture's server: this module's."""
    return on_postgres


async def test_the_main_flow_on_postgresql(page: Page, on_postgres: ServedApp) -> None:
    await sign_in(page, await on_postgres.register(full_name="Pat Postgres"))
    box = page.get_by_label("New task title")
    for title in ("Migrate the reports", "Archive last year's invoices"):
        await box.fill(title)
        await box.press("Enter")
        await expect(page.get_by_role("button", name=title, exact=True)).to_be_visible()
    await page.get_by_role("checkbox", name="Done: Migrate the reports").check()
    await page.get_by_label("Search tasks").fill("invoices")
    await expect(page.locator("tr.task-row")).to_have_count(1)

    await page.get_by_role("navigation", name="Layout").get_by_role("link", name="Board").click()
    await expect(page).to_have_url(re.compile(r"/board\?q=invoices$"))
    await page.get_by_label("Move “Archive last year's invoices” to").select_option("in_progress")
    in_progress = page.get_by_role("region", name=re.compile("^In progress"))
    await expect(in_progress.locator(".task-card")).to_have_count(1)
    await page.reload()
    await expect(in_progress.locator(".task-card")).to_have_count(1)

    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Stats").click()
    await expect(page.get_by_role("img", name=re.compile("^By status"))).to_have_attribute(
        "aria-label", "By status: To do 0, In progress 1, Done 1."
    )
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_text("You are signed out.")).to_be_visible()
