"""A person's day with their tasks: register, sign in, create, edit, complete, search, filter,
move on the board, delete, sign out; a conflicting edit; the form's validation messages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Locator, Page, expect

from tests.e2e.conftest import sign_in
from tests.e2e.served import ServedApp, unique_email
from tests.helpers import PASSWORD

pytestmark = pytest.mark.slow


def row(page: Page, title: str) -> Locator:
    return page.locator("tr.task-row").filter(
        has=page.get_by_role("button", name=title, exact=True)
    )


def column(page: Page, name: str) -> Locator:
    return page.get_by_role("region", name=re.compile(rf"^{name}"))


async def test_register_sign_in_and_manage_tasks(page: Page) -> None:
    email = unique_email("flow")
    await page.goto("/")
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.get_by_role("link", name="Create an account").click()
    await page.get_by_label("Full name (optional)").fill("Rosa Diaz")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_text("Welcome! Add your first task below.")).to_be_visible()
    await expect(page.get_by_role("heading", name="No tasks yet")).to_be_visible()

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_text("You are signed out.")).to_be_visible()
    await sign_in(page, email)
    await expect(page.get_by_role("link", name="Rosa Diaz")).to_be_visible()

    await create_with_the_form(page)
    await quick_add(page, "Call the bank")
    await edit(page, "Call the bank", "Call the bank about the loan")
    await complete(page, "Call the bank about the loan")
    await search_and_filter(page)
    await move_on_the_board(page)
    await delete(page, "Call the bank about the loan")

    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.reload()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.goto("/tasks")
    await expect(page).to_have_url(re.compile(r"/login\?next=%2Ftasks$"))


async def create_with_the_form(page: Page) -> None:
    await page.get_by_role("button", name="New task").click()
    dialog = page.get_by_role("dialog", name="New task")
    await dialog.get_by_label("Title").fill("Write the quarterly report")
    await dialog.get_by_label("Description").fill("Numbers from finance, charts from sales.")
    await dialog.get_by_label("Priority").select_option("high")
    await dialog.get_by_label("Due").fill("2030-03-14T16:30")
    await dialog.get_by_label("Tags").fill("work, finance")
    await dialog.get_by_role("button", name="Create task").click()
    await expect(dialog).to_be_hidden()
    report = row(page, "Write the quarterly report")
    await expect(report).to_contain_text("High")
    await expect(report).to_contain_text("finance")
    due = report.locator("td.col-due_at time")
    await expect(due).to_have_attribute("datetime", re.compile("^2030-03-14"))


async def quick_add(page: Page, title: str) -> None:
    box = page.get_by_label("New task title")
    await box.fill(title)
    await box.press("Enter")
    await expect(row(page, title)).to_be_visible()
    await expect(box).to_have_value("")
    await expect(page.get_by_role("status").filter(has_text="2 tasks")).to_be_visible()


async def edit(page: Page, title: str, new_title: str) -> None:
    await row(page, title).get_by_role("button", name=title, exact=True).click()
    dialog = page.get_by_role("dialog", name="Edit task")
    await expect(dialog.get_by_label("Title")).to_have_value(title)
    await dialog.get_by_label("Title").fill(new_title)
    await dialog.get_by_label("Priority").select_option("urgent")
    await dialog.get_by_role("button", name="Save changes").click()
    await expect(dialog).to_be_hidden()
    await expect(row(page, new_title)).to_contain_text("Urgent")


async def complete(page: Page, title: str) -> None:
    await page.get_by_role("checkbox", name=f"Done: {title}").check()
    await expect(row(page, title).locator(".status-pill")).to_have_text("Done")
    await page.reload()
    await expect(page.get_by_role("checkbox", name=f"Done: {title}")).to_be_checked()


async def search_and_filter(page: Page) -> None:
    rows = page.locator("tr.task-row")
    await page.get_by_label("Search tasks").fill("quarterly")
    await expect(page).to_have_url(re.compile(r"/tasks\?q=quarterly$"))
    await expect(rows).to_have_count(1)
    await expect(row(page, "Write the quarterly report")).to_be_visible()
    await page.get_by_label("Search tasks").fill("")
    await expect(page).to_have_url(re.compile(r"/tasks$"))
    await expect(rows).to_have_count(2)

    filters = page.get_by_role("group", name="Filters")
    await page.get_by_role("button", name="Filters").click()
    await filters.get_by_label("High").check()
    await expect(page).to_have_url(re.compile(r"/tasks\?priority=high$"))
    await expect(rows).to_have_count(1)
    await filters.get_by_label("Done").check()
    await expect(page).to_have_url(re.compile(r"/tasks\?status=done&priority=high$"))
    await expect(page.get_by_role("heading", name="No tasks match")).to_be_visible()

    await page.reload()
    await expect(page.get_by_role("button", name="Filters (2)")).to_be_visible()
    await expect(page.get_by_role("button", name="Remove filter Priority: High")).to_be_visible()
    await expect(page.get_by_role("heading", name="No tasks match")).to_be_visible()
    await page.go_back()
    await expect(page).to_have_url(re.compile(r"/tasks\?priority=high$"))
    await expect(rows).to_have_count(1)
    await page.get_by_role("button", name="Remove filter Priority: High").click()
    await expect(page).to_have_url(re.compile(r"/tasks$"))
    await expect(rows).to_have_count(2)

    titles = page.locator("tr.task-row .task-title")
    await page.get_by_role("button", name="Title").click()
    await expect(page).to_have_url(re.compile(r"/tasks\?sort=title$"))
    await expect(titles.first).to_have_text("Call the bank about the loan")
    await page.get_by_role("button", name="Title").click()
    await expect(page).to_have_url(re.compile(r"/tasks\?sort=-title$"))
    await expect(titles.first).to_have_text("Write the quarterly report")


async def move_on_the_board(page: Page) -> None:
    title = "Write the quarterly report"
    layout = page.get_by_role("navigation", name="Layout")
    await layout.get_by_role("link", name="Board").click()
    await expect(page).to_have_url(re.compile(r"/board\?sort=-title$"))
    cards = {
        name: column(page, name).locator(".task-card") for name in ("To do", "In progress", "Done")
    }
    await expect(cards["To do"]).to_have_count(1)
    await page.locator(".task-card", has_text=title).drag_to(
        column(page, "In progress").locator(".column-list")
    )
    await expect(cards["In progress"]).to_contain_text(title)
    await page.reload()
    await expect(cards["In progress"]).to_have_count(1)
    await expect(cards["To do"]).to_have_count(0)

    await page.locator(".task-card", has_text=title).focus()
    await page.keyboard.press("ArrowRight")
    await expect(page.locator("#announcer")).to_have_text(f"Moved “{title}” to Done.")
    await expect(cards["Done"]).to_have_count(2)
    await expect(page.locator(".task-card", has_text=title)).to_be_focused()
    await page.keyboard.press("ArrowLeft")
    await expect(cards["In progress"]).to_have_count(1)

    mover = page.get_by_label(f"Move “{title}” to")
    await mover.select_option("todo")
    await expect(cards["To do"]).to_have_count(1)
    await layout.get_by_role("link", name="List").click()
    await expect(page).to_have_url(re.compile(r"/tasks\?sort=-title$"))


async def delete(page: Page, title: str) -> None:
    await row(page, title).get_by_role("button", name=f"Delete “{title}”").click()
    dialog = page.get_by_role("dialog", name="Delete this task?")
    await expect(dialog).to_contain_text(title)
    await dialog.get_by_role("button", name="Delete task").click()
    await expect(row(page, title)).to_have_count(0)
    await page.reload()
    await expect(page.locator("tr.task-row")).to_have_count(1)


async def test_a_conflicting_edit_offers_the_current_version(page: Page, served: ServedApp) -> None:
    email = await served.register()
    headers = await served.bearer(email)
    task = await served.create_task(headers, title="Plan the offsite", priority="medium")
    await sign_in(page, email)
    await page.get_by_role("button", name="Plan the offsite", exact=True).click()
    dialog = page.get_by_role("dialog", name="Edit task")
    await expect(dialog.get_by_label("Title")).to_have_value("Plan the offsite")

    async with served.http() as http:
        changed = await http.patch(
            f"/tasks/{task['id']}",
            json={"title": "Plan the offsite in May", "priority": "high"},
            headers={**headers, "If-Match": f'"v{task["version"]}"'},
        )
    assert changed.status_code == 200, changed.text

    await dialog.get_by_label("Title").fill("Plan the offsite in June")
    await dialog.get_by_role("button", name="Save changes").click()
    conflict = dialog.get_by_role("alert").filter(has_text="Someone else changed this task")
    await expect(conflict).to_be_visible()
    await dialog.get_by_role("button", name="Reload").click()
    await expect(dialog.get_by_label("Title")).to_have_value("Plan the offsite in May")
    await expect(dialog.get_by_label("Priority")).to_have_value("high")
    await expect(conflict).to_be_hidden()
    await dialog.get_by_label("Title").fill("Plan the offsite in June")
    await dialog.get_by_role("button", name="Save changes").click()
    await expect(dialog).to_be_hidden()
    await expect(row(page, "Plan the offsite in June")).to_contain_text("High")


async def test_the_form_shows_the_api_field_errors(page: Page, served: ServedApp) -> None:
    await sign_in(page, await served.register())
    await page.get_by_role("button", name="New task").click()
    dialog = page.get_by_role("dialog", name="New task")
    create = dialog.get_by_role("button", name="Create task")
    title, tags = dialog.get_by_label("Title"), dialog.get_by_label("Tags")
    title_error = dialog.locator('[data-field="title"] .field-error')

    await create.click()
    await expect(title).to_have_attribute("aria-invalid", "true")
    await expect(title_error).to_have_text("String should have at least 1 character.")

    await title.fill("x" * 201)
    await tags.fill(", ".join(f"tag{n}" for n in range(21)))
    await create.click()
    summary = dialog.locator(".error-summary")
    await expect(summary).to_contain_text("Please fix 2 problems")
    await expect(title_error).to_have_text("String should have at most 200 characters.")
    tags_error = dialog.locator('[data-field="tags"] .field-error')
    await expect(tags_error).to_contain_text("at most 20 items")
    await expect(tags).to_have_attribute("aria-invalid", "true")
    await summary.get_by_role("link", name=re.compile("^Tags:")).click()
    await expect(tags).to_be_focused()

    await title.fill("A title of a sensible length")
    await tags.fill("one, two")
    await create.click()
    await expect(dialog).to_be_hidden()
    await expect(row(page, "A title of a sensible length")).to_contain_text("two")


async def test_archive_and_restore(page: Page, served: ServedApp) -> None:
    email = await served.register()
    headers = await served.bearer(email)
    for title in ("Old invoices", "New invoices"):
        await served.create_task(headers, title=title)
    await sign_in(page, email)
    await page.get_by_role("button", name="Archive “Old invoices”").click()
    await expect(page.get_by_text("“Old invoices” was archived.")).to_be_visible()
    await expect(row(page, "Old invoices")).to_have_count(0)
    await expect(page.get_by_role("button", name="New invoices", exact=True)).to_be_focused()

    await page.get_by_role("button", name="Filters").click()
    await page.get_by_label("Archived tasks").check()
    await expect(page).to_have_url(re.compile(r"/tasks\?archived=true$"))
    await expect(row(page, "Old invoices")).to_contain_text("Archived")
    await expect(page.locator("tr.task-row")).to_have_count(1)
    await page.get_by_role("button", name="Restore “Old invoices”").click()
    await expect(page.get_by_text("“Old invoices” is back in your tasks.")).to_be_visible()
    await expect(page.locator("tr.task-row")).to_have_count(0)
    await page.get_by_role("button", name="Remove filter Archived").click()
    await expect(page.locator("tr.task-row")).to_have_count(2)


async def test_load_more_pages_through_the_list(page: Page, served: ServedApp) -> None:
    email = await served.register()
    headers = await served.bearer(email)
    for number in range(1, 31):
        await served.create_task(headers, title=f"Invoice {number:02}")
    await sign_in(page, email)
    await page.get_by_role("button", name="Title").click()
    summary = page.get_by_role("status").filter(has_text="tasks")
    await expect(summary).to_have_text("Showing 25 of 30 tasks")
    await page.get_by_role("button", name="Load more").click()
    await expect(summary).to_have_text("30 tasks")
    titles = page.locator("tr.task-row .task-title")
    await expect(titles).to_have_count(30)
    await expect(titles.last).to_have_text("Invoice 30")
    await expect(page.get_by_role("button", name="Load more")).to_be_hidden()


async def test_an_unreachable_server_is_said_so(page: Page, served: ServedApp) -> None:
    await sign_in(page, await served.register())
    await page.route("**/api/v1/tasks?*", lambda route: route.abort("connectionrefused"))
    await page.get_by_label("Search tasks").fill("anything")
    alert = page.get_by_role("alert").filter(has_text="Can't reach the server")
    await expect(alert).to_contain_text("Check your connection and try again.")


async def test_tag_due_range_and_overdue_filters(page: Page, served: ServedApp) -> None:
    email = await served.register()
    headers = await served.bearer(email)
    for title, tags, due, status in FILTERED_TASKS:
        if isinstance(due, timedelta):
            due = datetime.now(UTC) + due
        due_at = due.isoformat() if due else None
        await served.create_task(headers, title=title, tags=tags, due_at=due_at, status=status)
    await sign_in(page, email)
    await page.goto("/tasks?sort=title")
    titles = page.locator("tr.task-row .task-title")
    await expect(titles).to_have_count(len(FILTERED_TASKS))
    await page.get_by_role("button", name="Filters").click()
    filters = page.get_by_role("group", name="Filters")

    await filters.get_by_label("Tag").fill("home")
    await filters.get_by_label("Tag").press("Enter")
    await expect(page).to_have_url(re.compile(r"/tasks\?sort=title&tag=home$"))
    await expect(titles).to_have_text(["Fix the boiler", "Pay the rent", "Water the plants"])
    await filters.get_by_label("Tag").fill("home, repairs")
    await filters.get_by_label("Tag").press("Enter")
    await expect(page).to_have_url(re.compile(r"/tasks\?sort=title&tag=home&tag=repairs$"))
    await expect(titles).to_have_text(["Fix the boiler"])
    await filters.get_by_role("button", name="Clear filters").click()
    await expect(page).to_have_url(re.compile(r"/tasks\?sort=title$"))

    await filters.get_by_label("Due from").fill("2031-05-15")
    await filters.get_by_label("Due until").fill("2031-06-15")
    await expect(page).to_have_url(
        re.compile(r"/tasks\?sort=title&due_after=2031-05-15&due_before=2031-06-15$")
    )
    await expect(titles).to_have_text(["Fix the boiler", "Renew the passport"])
    await page.reload()
    await expect(titles).to_have_text(["Fix the boiler", "Renew the passport"])
    await page.get_by_role("button", name="Filters (2)").click()
    await expect(filters.get_by_label("Due from")).to_have_value("2031-05-15")
    await expect(filters.get_by_label("Due until")).to_have_value("2031-06-15")

    await page.goto("/tasks?sort=title")
    await page.get_by_role("button", name="Filters").click()
    await filters.get_by_label("Only overdue").check()
    await expect(page).to_have_url(re.compile(r"/tasks\?sort=title&overdue=true$"))
    await expect(titles).to_have_text(["Pay the rent"])  # not the one done, nor any undated
    await page.reload()
    await expect(page.get_by_role("button", name="Remove filter Overdue")).to_be_visible()
    await expect(titles).to_have_text(["Pay the rent"])


# Title, tags, due (a time, or a time from now), status.
FILTERED_TASKS: list[tuple[str, list[str], datetime | timedelta | None, str]] = [
    ("Pay the rent", ["home"], timedelta(days=-2), "todo"),
    ("Book the flights", ["travel"], timedelta(days=-2), "done"),
    ("Fix the boiler", ["home", "repairs"], datetime(2031, 5, 20, 12, tzinfo=UTC), "in_progress"),
    ("Renew the passport", ["travel"], datetime(2031, 6, 15, 12, tzinfo=UTC), "todo"),
    ("Water the plants", ["home"], None, "todo"),
    ("Plan the holiday", ["travel"], datetime(2031, 7, 1, 12, tzinfo=UTC), "todo"),
]
