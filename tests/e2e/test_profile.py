"""The profile page: name and email, notification emails, other sessions, the password."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import sign_in
from tests.e2e.served import ServedApp, unique_email
from tests.helpers import PASSWORD

pytestmark = pytest.mark.slow
NEW_PASSWORD = "Purple-lantern-77"


async def test_change_details_settings_sessions_and_password(page: Page, served: ServedApp) -> None:
    email = await served.register(full_name="Sam Sample")
    await sign_in(page, email)
    await page.get_by_role("link", name="Sam Sample").click()
    await expect(page.get_by_role("heading", level=1, name="Profile")).to_be_visible()
    details = page.get_by_role("region", name="Your details")

    await details.get_by_label("Full name").fill("Samantha Sample")
    await details.get_by_label("Email").fill(new_email := unique_email("moved"))
    await details.get_by_role("button", name="Save details").click()
    current_password = details.get_by_label("Current password")
    await expect(current_password).to_have_attribute("aria-invalid", "true")
    await expect(details).to_contain_text("The current password is incorrect.")
    await current_password.fill(PASSWORD)
    await details.get_by_role("button", name="Save details").click()
    await expect(page.get_by_text("Your details are saved.")).to_be_visible()
    await expect(page.get_by_role("link", name="Samantha Sample")).to_be_visible()

    digest = page.get_by_role("checkbox", name="Daily digest")
    await expect(digest).to_be_checked()
    await digest.uncheck()
    await expect(page.get_by_text("Daily digest: off.")).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("checkbox", name="Daily digest")).not_to_be_checked()

    await sign_out_other_devices(page, served, new_email)

    passwords = page.get_by_role("region", name="Password")
    await passwords.get_by_label("Current password").fill(PASSWORD)
    await passwords.get_by_label("New password").fill(NEW_PASSWORD)
    await passwords.get_by_role("button", name="Change password").click()
    await expect(page.get_by_text("Your password is changed")).to_be_visible()
    await page.get_by_role("button", name="Sign out", exact=True).click()
    await sign_in(page, new_email, NEW_PASSWORD)


async def sign_out_other_devices(page: Page, served: ServedApp, email: str) -> None:
    async with served.http() as http:
        login = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
        other = login.json()["refresh_token"]
        await page.get_by_role("button", name="Sign out other devices").click()
        await expect(page.get_by_text("Every other session is signed out.")).to_be_visible()
        refreshed = await http.post("/auth/refresh", json={"refresh_token": other})
    assert refreshed.status_code == 401, refreshed.text
    await page.reload()
    await expect(page).to_have_url(re.compile(r"/profile$"))
