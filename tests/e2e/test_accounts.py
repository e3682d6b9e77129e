"""Accounts with email verification on: register and confirm the address from the email's
link; forget the password and choose a new one from the reset link."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import sign_in
from tests.e2e.served import ServedApp, serve, unique_email
from tests.helpers import PASSWORD

pytestmark = pytest.mark.slow
NEW_PASSWORD = "Battery-staple-42"


@pytest.fixture(scope="module")
def verifying(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    with serve(tmp_path_factory.mktemp("verifying"), require_email_verification=True) as app:
        yield app


@pytest.fixture
def served(verifying: ServedApp) -> ServedApp:
    """The page fixture's server: this module's."""
    return verifying


async def test_register_verify_the_address_and_reset_the_password(
    page: Page, verifying: ServedApp
) -> None:
    email = unique_email("verify")
    await page.goto("/register")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("status")).to_contain_text("Check your email.")

    await page.goto("/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    refused = page.get_by_role("alert")
    await expect(refused).to_contain_text("Verify your email address first")
    await expect(refused.get_by_role("button", name="Send the link again")).to_be_visible()

    await page.goto(await verifying.link_in_mail(email, "verify-email"))
    await expect(page.get_by_text("Your email address is verified.")).to_be_visible()
    await page.get_by_role("link", name="Sign in").click()
    await sign_in(page, email)
    await page.get_by_role("button", name="Sign out").click()

    await page.get_by_role("link", name="Forgot your password?").click()
    await page.get_by_label("Email").fill(email)
    await page.get_by_role("button", name="Send the link").click()
    await expect(page.get_by_role("status")).to_contain_text("a message explains what comes next")
    await page.goto(await verifying.link_in_mail(email, "reset-password"))
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Set the new password").click()
    await expect(page).to_have_url(re.compile(r"/login$"))
    await expect(page.get_by_text("Your password has been changed.")).to_be_visible()
    await sign_in(page, email, NEW_PASSWORD)


async def test_a_used_or_wrong_link_says_so(page: Page) -> None:
    await page.goto("/verify-email?token=" + "x" * 40)
    await expect(page.get_by_role("alert")).to_contain_text("invalid")
    await expect(page.get_by_role("button", name="Send a new link")).to_be_visible()
    await page.goto("/reset-password?token=" + "y" * 40)
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Set the new password").click()
    await expect(page.get_by_role("alert")).to_contain_text("invalid")
    await expect(page.get_by_role("link", name="Request a new link")).to_be_visible()
