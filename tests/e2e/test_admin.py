"""Administration: find an account, change its role, deactivate and reactivate it, read its
tasks, delete it once confirmed; the API's refusal (the last admin) is shown; everybody else
is kept out."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import sign_in
from tests.e2e.served import ServedApp, unique_email
from tests.helpers import PASSWORD

pytestmark = pytest.mark.slow


async def test_an_admin_manages_accounts(page: Page, served: ServedApp) -> None:
    admin = unique_email("admin")
    await served.create_admin(admin, full_name="Ada Admin")
    member = await served.register(unique_email("member"), full_name="Milo Member")
    await served.register(unique_email("other"), full_name="Olga Other")
    headers = await served.bearer(member)
    await served.create_task(headers, title="Member's first task", priority="high")
    await served.create_task(headers, title="Member's second task", status="done")

    await sign_in(page, admin)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    await expect(page).to_have_url(re.compile(r"/admin/users$"))
    await page.get_by_label("Search users").fill(member)
    await expect(page).to_have_url(re.compile(r"/admin/users\?q="))
    users = page.locator("tbody tr")
    await expect(users).to_have_count(1)
    await expect(users).to_contain_text("Milo Member")

    await page.get_by_label("Role of Milo Member").select_option("admin")
    await expect(
        page.get_by_role("status").filter(has_text=f"{member} is now an admin.")
    ).to_be_visible()
    await page.get_by_label("Role", exact=True).select_option("admin")
    await expect(page).to_have_url(re.compile(r"role=admin"))
    await expect(users).to_have_count(1)
    await page.get_by_label("Role of Milo Member").select_option("user")
    # The list is filtered by role=admin: the row may leave it as soon as the change lands.
    await expect(
        page.get_by_role("status").filter(has_text=f"{member} is now a user.")
    ).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("status").filter(has_text="No users match.")).to_be_visible()
    await page.get_by_label("Role", exact=True).select_option("")

    await page.get_by_role("button", name=f"Deactivate {member}").click()
    await expect(users.filter(has_text=member)).to_contain_text("Deactivated")
    await page.get_by_role("button", name=f"Reactivate {member}").click()
    await expect(users.filter(has_text=member)).to_contain_text("Active")

    await page.get_by_role("link", name="Milo Member").click()
    await expect(page.get_by_role("heading", level=1, name="Milo Member")).to_be_visible()
    tasks = page.get_by_role("region", name=re.compile("^Tasks"))
    await expect(tasks.locator("tbody tr")).to_have_count(2)
    await expect(tasks).to_contain_text("Member's first task")
    await expect(tasks).to_contain_text("Done")

    await refuse_to_demote_the_last_admin(page, admin)


async def refuse_to_demote_the_last_admin(page: Page, admin: str) -> None:
    await page.goto(f"/admin/users?q={admin}")
    await page.get_by_label("Role of Ada Admin").select_option("user")
    alert = page.get_by_role("alert").filter(has_text="The last admin must stay an active admin")
    await expect(alert).to_be_visible()
    await expect(page.get_by_label("Role of Ada Admin")).to_have_value("admin")


async def test_a_member_is_kept_out_of_admin_pages(page: Page, served: ServedApp) -> None:
    await sign_in(page, await served.register())
    admin_link = page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")
    await expect(admin_link).to_have_count(0)
    await page.goto("/admin/users")
    await expect(page.get_by_role("heading", level=1, name="Admins only")).to_be_visible()
    await page.goto("/admin")
    await expect(page).to_have_url(re.compile(r"/admin/users$"))
    await expect(page.get_by_role("heading", level=1, name="Admins only")).to_be_visible()


async def test_an_admin_deletes_accounts_after_confirming(page: Page, served: ServedApp) -> None:
    admin = unique_email("admin")
    await served.create_admin(admin)
    leaving = await served.register(unique_email("leaving"), full_name="Lena Leaving")
    await served.create_task(await served.bearer(leaving), title="Lena's task")
    gone = await served.register(unique_email("gone"), full_name="Gus Gone")
    await sign_in(page, admin)

    await page.goto(f"/admin/users?q={leaving}")
    users = page.locator("tbody tr")
    await expect(users).to_have_count(1)
    await page.get_by_role("button", name=f"Delete {leaving}").click()
    dialog = page.get_by_role("dialog", name="Delete this account?")
    await expect(dialog).to_contain_text(f"{leaving} and all their tasks will be deleted")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    await expect(users).to_have_count(1)

    await page.get_by_role("button", name=f"Delete {leaving}").click()
    await dialog.get_by_role("button", name="Delete account").click()
    await expect(
        page.get_by_role("status").filter(has_text=f"{leaving} was deleted.")
    ).to_be_visible()
    await expect(users).to_have_count(0)
    await page.reload()
    await expect(page.get_by_role("status").filter(has_text="No users match.")).to_be_visible()

    await page.goto(f"/admin/users?q={gone}")
    await page.get_by_role("link", name="Gus Gone").click()
    await expect(page.get_by_role("heading", level=1, name="Gus Gone")).to_be_visible()
    await page.get_by_role("button", name=f"Delete {gone}").click()
    await dialog.get_by_role("button", name="Delete account").click()
    await expect(page).to_have_url(re.compile(r"/admin/users$"))
    await expect(page.locator("tbody tr").filter(has_text=admin)).to_have_count(1)
    await expect(page.locator("tbody tr").filter(has_text=gone)).to_have_count(0)
    async with served.http() as http:
        for email in (leaving, gone):
            refused = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
            assert refused.status_code == 401, refused.text
