"""What a person does not see directly: accessibility (axe-core), the Content-Security-Policy,
the weight of the first load; and the screenshots in docs/screenshots, taken on the way."""

from __future__ import annotations

import re
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
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"
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


async def test_pages_have_no_serious_accessibility_violations(
    browser: Browser, showcase: ServedApp, admin_page: Page, axe_script: str
) -> None:
    found: dict[str, list[str]] = {}
    signed_out = await new_context(browser, showcase)
    try:
        page = await signed_out.new_page()
        for path in ("/login", "/register"):
            await page.goto(path)
            await expect(page.locator("form")).to_be_visible()
            found[path] = await axe(page, axe_script)
    finally:
        await signed_out.close()

    page = admin_page
    for path, ready in PAGES_TO_CHECK:
        await page.goto(path)
        await expect(page.locator(ready).first).to_be_visible()
        found[path] = await axe(page, axe_script)
    await page.goto("/tasks")
    await page.get_by_role("button", name="New task").click()
    await expect(page.get_by_role("dialog")).to_be_visible()
    found["/tasks (task form)"] = await axe(page, axe_script)

    blocking = {path: issues for path, issues in found.items() if issues}
    assert not blocking, "\n".join(f"{path}: {issues}" for path, issues in blocking.items())


PAGES_TO_CHECK = [
    ("/tasks", "tr.task-row"),
    ("/board", ".task-card"),
    ("/stats", ".tile"),
    ("/profile", 'input[name="daily_digest"]:enabled'),
    ("/admin/users", "tbody tr"),
]


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


async def test_screenshots(browser: Browser, showcase: ServedApp, admin_page: Page) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    signed_out = await new_context(browser, showcase)
    try:
        page = await signed_out.new_page()
        await page.goto("/login")
        for size, scheme in LOGIN_SHOTS:
            await shoot(page, "login", size, scheme)
    finally:
        await signed_out.close()
    for name, path, ready, variants in SHOTS:
        await admin_page.goto(path)
        await expect(admin_page.locator(ready).first).to_be_visible()
        for size, scheme in variants:
            await shoot(admin_page, name, size, scheme)
    written = sorted(path.name for path in SCREENSHOTS.glob("*.png"))
    assert len(written) >= 14, written


async def shoot(page: Page, name: str, size: str, scheme: str) -> None:
    await page.set_viewport_size(PHONE if size == "phone" else DESKTOP)
    await page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    await page.mouse.move(0, 0)
    await page.screenshot(
        path=SCREENSHOTS / f"{name}-{size}-{scheme}.png", animations="disabled", caret="hide"
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
    print(f"first load of /tasks: {total} bytes transferred in {len(sizes)} files")
    assert any(url.endswith(".js") for url in sizes)
    assert total < FIRST_LOAD_BUDGET, sizes


async def transferred_on_load(context: BrowserContext, page: Page, path: str) -> dict[str, int]:
    """Bytes on the wire (compressed, with headers) per document and asset, cache empty."""
    cdp = await context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    urls: dict[str, str] = {}
    sizes: dict[str, int] = {}

    def received(event: dict[str, Any]) -> None:
        if event["type"] not in {"Fetch", "XHR"}:
            urls[event["requestId"]] = event["response"]["url"]

    def finished(event: dict[str, Any]) -> None:
        url = urls.get(event["requestId"])
        if url is not None:
            sizes[url] = int(event["encodedDataLength"])

    cdp.on("Network.responseReceived", received)
    cdp.on("Network.loadingFinished", finished)
    await page.goto(path, wait_until="networkidle")
    await expect(page.locator("tr.task-row").first).to_be_visible()
    await cdp.detach()
    return sizes
