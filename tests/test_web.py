"""The web app's files as the service serves them: pages, assets, caching, CSP, size.

The browser itself drives the app in tests/e2e; these check the serving contract without one.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import httpx
import pytest

from primetrade.web.router import CONTENT_SECURITY_POLICY, STATIC_DIR, UI_SECTIONS, WebApp
from tests.helpers import API, assert_problem

IMMUTABLE = "public, max-age=31536000, immutable"
ASSET_URL = re.compile(r'(?:src|href)="(/assets/[^"]+)"')
RELATIVE_IMPORT = re.compile(r"""(?:import|from)\s*\(?\s*["'](\.{1,2}/[^"']+)["']""")
FIRST_LOAD_BUDGET = 150 * 1024


@pytest.mark.parametrize(
    "path",
    ["/", "/login", "/tasks", "/tasks?status=todo&sort=-due_at", "/board", "/admin/users/42"],
)
async def test_every_ui_path_answers_the_page_under_a_strict_csp(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    csp = response.headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    page = response.text
    assert "{{ASSETS}}" not in page
    # No inline script at all: every <script> element names its file.
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, flags=re.S)
    assert scripts, "the page loads no script"
    for attributes, body in scripts:
        assert "src=" in attributes
        assert not body.strip()
    assert not re.search(r"\son[a-z]+=", page), "inline event handler"


def test_ui_sections_cover_the_links_in_emails() -> None:
    # The verification and reset emails link to these pages.
    assert {"verify-email", "reset-password"} <= set(UI_SECTIONS)


async def test_the_page_revalidates_with_its_etag(client: httpx.AsyncClient) -> None:
    first = await client.get("/tasks")
    again = await client.get("/tasks", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


async def test_paths_outside_the_ui_stay_api_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/nowhere"), 404)
    assert_problem(await client.get(f"{API}/nowhere"), 404)
    assert_problem(await client.get("/tasksx"), 404)


async def test_every_asset_the_page_loads_is_served_immutable_and_typed(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/tasks")).text
    urls = ASSET_URL.findall(page)
    assert any(url.endswith(".js") for url in urls)
    assert any(url.endswith(".css") for url in urls)
    for url in urls:
        response = await client.get(url)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == IMMUTABLE
        kind = response.headers["content-type"]
        if url.endswith(".js"):
            assert kind == "text/javascript; charset=utf-8"
        elif url.endswith(".css"):
            assert kind == "text/css; charset=utf-8"


async def first_load(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None
) -> list[httpx.Response]:
    """The task page and every file it loads, following module imports (each once)."""
    page = await client.get("/tasks", headers=headers)
    responses = [page]
    pending = ASSET_URL.findall(page.text)
    seen: set[str] = set()
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        seen.add(url)
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, f"{url} is missing"
        responses.append(response)
        if url.endswith(".js"):
            base = httpx.URL(f"http://testserver{url}")
            pending += [base.join(target).path for target in RELATIVE_IMPORT.findall(response.text)]
    return responses


async def test_every_module_import_resolves_inside_the_build(client: httpx.AsyncClient) -> None:
    """Walk the module graph from the page's entry points: no import points at nothing."""
    loaded = await first_load(client)
    assert sum(1 for r in loaded if r.url.path.endswith(".js")) >= 1


async def test_the_first_load_fits_the_budget_compressed(client: httpx.AsyncClient) -> None:
    """Page plus every file it loads, as sent gzip-compressed (httpx decodes: re-measure)."""
    total = 0
    for response in await first_load(client, {"Accept-Encoding": "gzip"}):
        compressed = response.headers.get("content-encoding") == "gzip"
        total += len(gzip.compress(response.content)) if compressed else len(response.content)
    assert total < FIRST_LOAD_BUDGET, f"first load is {total} bytes"


async def test_assets_of_another_build_or_unknown_files_are_404(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/")).text
    url = ASSET_URL.findall(page)[0]
    _, _, build, name = url.split("/", 3)
    assert_problem(await client.get(f"/assets/{'0' * len(build)}/{name}"), 404)
    assert_problem(await client.get(f"/assets/{build}/no-such-file.js"), 404)
    assert_problem(await client.get(f"/assets/{build}/views"), 404)  # a folder
    assert_problem(await client.get(f"/assets/{build}/index.html"), 404)  # the page is not one


def test_the_build_id_changes_with_any_file(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text('<script type="module" src="{{ASSETS}}/a.js"></script>')
    (tmp_path / "views").mkdir()
    (tmp_path / "views" / "b.js").write_text("export const b = 1;")
    (tmp_path / "a.js").write_text('import {b} from "./views/b.js";')
    before = WebApp(tmp_path)
    assert before.page is not None
    assert f'src="/assets/{before.build}/a.js"'.encode() in before.page
    assert set(before.assets) == {"a.js", "views/b.js"}
    (tmp_path / "views" / "b.js").write_text("export const b = 2;")
    after = WebApp(tmp_path)
    assert after.build != before.build
    assert after.page_etag != before.page_etag


def test_without_static_files_the_page_is_a_404_not_a_crash(tmp_path: Path) -> None:
    empty = WebApp(tmp_path / "missing")
    assert empty.page is None
    assert empty.assets == {}


async def test_the_file_the_router_probes_for_a_newer_build_is_served(
    client: httpx.AsyncClient,
) -> None:
    """router.js asks for one file of its own build to learn that a deploy replaced it."""
    router_js = (STATIC_DIR / "router.js").read_text()
    probe = re.search(r'const PROBE = new URL\("\./([^"]+)", import\.meta\.url\)', router_js)
    assert probe, "router.js names no probe file"
    page = (await client.get("/")).text
    build = ASSET_URL.findall(page)[0].split("/")[2]
    response = await client.get(f"/assets/{build}/{probe[1]}")
    assert response.status_code == 200
    assert len(response.content) < 1024  # asked for on every link: it must stay tiny
