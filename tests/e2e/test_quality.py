"""What a person does not see directly: accessibility (axe-core), the Content-Security-Policy,
the weight of the first load; and the README's screenshots, taken on the way (written to
docs/screenshots by `make screenshots`)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, expect

from tests.e2e.conftest import PageProblems, new_context, sign_in, watch
from tests.e2e.served import ServedApp, serve

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
SCREENSHOTS = ROOT / "docs" / "screenshots"
PHONE = ViewportSize(width=390, height=844)
DESKTOP = ViewportSize(width=1280, height=800)
FIRST_LOAD_BUDGET = 150 * 1024
EXPECTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
BLOCKING = {"serious", "critical"}


@pytest.fixture(scope="module")
def showcase(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    """A server of its own: an admin with a believable week of work (and nobody else's)."""
    with serve(tmp_path_factory.mktemp("showcase")) as app:
        yield app


@pytest.fixture(scope="module")
async def admin(showcase: ServedApp) -> str:
    email = "ada@example.com"  # this server's database is the module's own
    await showcase.create_admin(email, full_name="Ada Lovelace")
    headers = await showcase.bearer(email)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for days, fields in SAMPLE_TASKS:
        due = (now + timedelta(days=days)).isoformat() if days is not None else None
        await showcase.create_task(headers, due_at=due, **fields)
    for name in ("Grace Hopper", "Alan Turing", "Katherine Johnson"):
        await showcase.register(f"{name.split()[0].lower()}@example.com", full_name=name)
    return email


SAMPLE_TASKS: list[tuple[int | None, dict[str, Any]]] = [
    (-2, {"title": "Send the signed contract to Legal", "priority": "urgent", "tags": ["legal"]}),
    (
        0,
        {
            "title": "Review the Q3 budget draft",
            "priority": "high",
            "status": "in_progress",
            "tags": ["finance"],
        },
    ),
    (1, {"title": "Prepare the board meeting slides", "priority": "high", "tags": ["meetings"]}),
    (
        3,
        {
            "title": "Interview for the frontend role",
            "priority": "medium",
            "status": "in_progress",
            "tags": ["hiring"],
        },
    ),
    (5, {"title": "Renew the SSL certificates", "priority": "medium", "tags": ["ops"]}),
    (
        None,
        {
            "title": "Write onboarding notes for new hires",
            "priority": "low",
            "tags": ["docs", "hiring"],
        },
    ),
    (
        -5,
        {
            "title": "Book travel for the Berlin conference",
            "priority": "medium",
            "status": "done",
            "tags": ["travel"],
        },
    ),
    (
        -1,
        {
            "title": "Fix the flaky login test",
            "priority": "high",
            "status": "done",
            "tags": ["engineering"],
        },
    ),
    (8, {"title": "Plan the team offsite", "priority": "low", "tags": ["team"]}),
]


@pytest.fixture
async def admin_page(
    browser: Browser, showcase: ServedApp, admin: str, problems: PageProblems
) -> AsyncIterator[Page]:
    context = await new_context(browser, showcase)
    page = watch(await context.new_page(), problems)
    await sign_in(page, admin)
    yield page
    await context.close()


# --- Accessibility ------------------------------------------------------------------------

SIGNED_OUT_PAGES = [
    ("/login", "form"),
    ("/register", "form"),
    ("/forgot-password", "form"),
    ("/reset-password?token=" + "x" * 40, "form"),
    ("/verify-email?token=" + "x" * 40, "[role=alert]"),  # a wrong link: its error and form
]
SIGNED_IN_PAGES = [
    ("/tasks", "tr.task-row"),
    ("/board", ".task-card"),
    ("/stats", ".tile"),
    ("/profile", 'input[name="daily_digest"]:enabled'),
    ("/admin/users", "tbody tr"),
    ("/admin/users/{admin_id}", "main:has(.user-card dl) .owner-tasks tbody tr"),
]
SIZES = {"desktop": DESKTOP, "phone": PHONE}


@pytest.fixture(scope="module")
async def admin_id(showcase: ServedApp, admin: str) -> str:
    headers = await showcase.bearer(admin)
    async with showcase.http() as http:
        response = await http.get("/admin/users", params={"q": admin}, headers=headers)
    assert response.status_code == 200, response.text
    (user,) = response.json()["items"]
    return str(user["id"])


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_pages_have_no_serious_accessibility_violations(
    browser: Browser,
    showcase: ServedApp,
    admin: str,
    admin_id: str,
    axe_script: str,
    problems: PageProblems,
    scheme: str,
) -> None:
    """Every page at desktop and phone size, in one colour scheme: one context signed out,
    one signed in, each resized rather than recreated."""
    found: dict[str, list[str]] = {}
    for user, pages in ((None, SIGNED_OUT_PAGES), (admin, SIGNED_IN_PAGES)):
        context = await new_context(browser, showcase, color_scheme=scheme)
        try:
            page = watch(await context.new_page(), problems)
            if user:
                await sign_in(page, user)
            for size, viewport in SIZES.items():
                await page.set_viewport_size(viewport)
                for path, ready in pages:
                    url = path.format(admin_id=admin_id)
                    await page.goto(url)
                    await expect(page.locator(ready).first).to_be_visible()
                    found[f"{size} {url}"] = await axe(page, axe_script)
                if user:
                    found.update(await check_task_controls(page, size, axe_script))
        finally:
            await context.close()
    blocking = {where: issues for where, issues in found.items() if issues}
    assert not blocking, "\n".join(f"{where}: {issues}" for where, issues in blocking.items())


async def check_task_controls(page: Page, size: str, axe_script: str) -> dict[str, list[str]]:
    """The task list's filter panel, then its task form dialog."""
    await page.goto("/tasks")
    await page.get_by_role("button", name="Filters").click()
    await expect(page.get_by_role("group", name="Filters")).to_be_visible()
    found = {f"{size} /tasks (filters)": await axe(page, axe_script)}
    await page.get_by_role("button", name="New task").click()
    await expect(page.get_by_role("dialog")).to_be_visible()
    found[f"{size} /tasks (task form)"] = await axe(page, axe_script)
    return found


async def axe(page: Page, script: str) -> list[str]:
    """Run axe-core on the page; print the minor findings, return the serious ones."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        # Evaluated through the DevTools protocol, which the page's CSP does not govern.
        await page.evaluate(script)
    results: dict[str, Any] = await page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']})"
    )
    assert results["passes"], "axe checked nothing"
    blocking = []
    for violation in results["violations"]:
        targets = [node["target"] for node in violation["nodes"]][:3]
        line = f"{violation['impact']} {violation['id']}: {violation['help']} {targets}"
        if violation["impact"] in BLOCKING:
            blocking.append(line)
        else:
            print(f"axe {page.url}: {line}")
    return blocking


# --- Screenshots --------------------------------------------------------------------------

SHOTS = [
    (
        "tasks",
        "/tasks",
        "tr.task-row",
        [("desktop", "light"), ("desktop", "dark"), ("phone", "light"), ("phone", "dark")],
    ),
    (
        "board",
        "/board",
        ".task-card",
        [("desktop", "light"), ("desktop", "dark"), ("phone", "dark")],
    ),
    ("stats", "/stats", ".tile", [("desktop", "light"), ("phone", "dark")]),
    ("admin-users", "/admin/users", "tbody tr", [("desktop", "light"), ("desktop", "dark")]),
]
LOGIN_SHOTS = [("desktop", "light"), ("desktop", "dark"), ("phone", "light")]


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """docs/screenshots with UPDATE_SCREENSHOTS=1 (`make screenshots`), else a scratch folder.

    Taken on every run either way, so a page that cannot be shot fails the suite; the files
    the README shows change only when asked, so running the tests leaves the tree clean.
    """
    folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_screenshots(
    browser: Browser, showcase: ServedApp, admin_page: Page, screenshots: Path
) -> None:
    started = time.time()
    signed_out = await new_context(browser, showcase)
    try:
        page = await signed_out.new_page()
        await page.goto("/login")
        for size, scheme in LOGIN_SHOTS:
            await shoot(page, screenshots, "login", size, scheme)
    finally:
        await signed_out.close()
    for name, path, ready, variants in SHOTS:
        await admin_page.goto(path)
        await expect(admin_page.locator(ready).first).to_be_visible()
        for size, scheme in variants:
            await shoot(admin_page, screenshots, name, size, scheme)
    linked = sorted(set(re.findall(r"docs/screenshots/([\w.-]+\.png)", README.read_text())))
    assert linked, "the README links no screenshots"
    stale = [name for name in linked if not written_since(screenshots / name, started)]
    assert not stale, f"the README links screenshots this run did not write: {stale}"
    missing = [name for name in linked if not (SCREENSHOTS / name).is_file()]
    assert not missing, f"the README links screenshots not in docs/screenshots: {missing}"


def written_since(path: Path, moment: float) -> bool:
    return path.exists() and path.stat().st_mtime >= moment


async def shoot(page: Page, folder: Path, name: str, size: str, scheme: str) -> None:
    await page.set_viewport_size(PHONE if size == "phone" else DESKTOP)
    await page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    await page.mouse.move(0, 0)
    await page.screenshot(
        path=folder / f"{name}-{size}-{scheme}.png", animations="disabled", caret="hide"
    )


# --- Content-Security-Policy and weight -----------------------------------------------------


async def test_ui_pages_carry_the_csp_and_no_inline_code(showcase: ServedApp) -> None:
    async with httpx.AsyncClient(base_url=showcase.url) as http:
        for path in ("/", "/login", "/tasks?status=todo", "/board", "/admin/users/x"):
            response = await http.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-security-policy"] == EXPECTED_CSP
            assert response.headers["cache-control"] == "no-cache"
            html = response.text
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
            assert not re.search(r"\sstyle=|\son[a-z]+=|<style", html), "inline style/handler"
            assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', html)
            assert assets, html
        for asset in assets:
            cached = await http.get(asset)
            assert cached.status_code == 200, asset
            assert cached.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_the_task_view_loads_under_150_kb(
    browser: Browser, showcase: ServedApp, admin: str, problems: PageProblems
) -> None:
    context = await new_context(browser, showcase)
    try:
        page = watch(await context.new_page(), problems)
        await sign_in(page, admin)
        sizes = await transferred_on_load(context, page, "/tasks")
    finally:
        await context.close()
    total = sum(sizes.values())
    print(f"first load of /tasks: {total} bytes transferred in {len(sizes)} responses")
    assert any(url.endswith(".js") for url in sizes)
    api = [url.split("/api/v1", 1)[1] for url in sizes if "/api/v1/" in url]
    assert {"/auth/session/refresh", "/users/me"} <= set(api), api
    assert any(path.startswith("/tasks?") for path in api), api
    assert total < FIRST_LOAD_BUDGET, sizes


async def transferred_on_load(context: BrowserContext, page: Page, path: str) -> dict[str, int]:
    """Bytes on the wire (compressed, with headers) per URL, cache empty: the document, its
    assets and the API calls the page makes to show itself (session, user, tasks)."""
    cdp = await context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    urls: dict[str, str] = {}
    sizes: dict[str, int] = {}

    def received(event: dict[str, Any]) -> None:
        urls[event["requestId"]] = event["response"]["url"]

    def finished(event: dict[str, Any]) -> None:
        url = urls.get(event["requestId"])
        if url is not None:
            sizes[url] = sizes.get(url, 0) + int(event["encodedDataLength"])

    cdp.on("Network.responseReceived", received)
    cdp.on("Network.loadingFinished", finished)
    await page.goto(path, wait_until="networkidle")
    await expect(page.locator("tr.task-row").first).to_be_visible()
    await cdp.detach()
    return sizes
