"""Serving the web app: its pages at the UI's paths, its assets under a content hash.

Every file of `static/` except the page itself is served at `/assets/<build>/<path>`, where
`<build>` is a hash of the whole folder, and may be cached for a year: a changed file means a
new build and new URLs. Hashing the folder rather than each file keeps the modules' relative
imports (`./api.js`) working without a bundler to rewrite them; a release changes every URL,
which for a UI of this size costs one extra download of a few tens of kilobytes.

The page itself (`index.html`, with `{{ASSETS}}` standing for `/assets/<build>`) is answered
at each path the UI routes in the browser, revalidated on every load, under a
Content-Security-Policy that allows scripts and styles from this origin only.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import Response

from primetrade.kit.errors import NotFound

STATIC_DIR = Path(__file__).parent / "static"
PAGE = "index.html"
ASSETS_PLACEHOLDER = "{{ASSETS}}"
# The first path segments the web app routes in the browser (with whatever follows them).
UI_SECTIONS = (
    "login",
    "register",
    "forgot-password",
    "reset-password",
    "verify-email",
    "tasks",
    "board",
    "stats",
    "profile",
    "admin",
)
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    )
)
IMMUTABLE = "public, max-age=31536000, immutable"
_TEXT_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@dataclass(frozen=True, slots=True)
class Asset:
    content: bytes
    media_type: str


class WebApp:
    """The static files of one build, read once at start-up."""

    def __init__(self, root: Path = STATIC_DIR) -> None:
        files = {
            path.relative_to(root).as_posix(): path.read_bytes()
            for path in sorted(root.rglob("*"))
            if path.is_file() and not path.name.startswith(".")
        }
        digest = hashlib.sha256()
        for name, content in files.items():
            digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
        self.build = digest.hexdigest()[:16]
        self.prefix = f"/assets/{self.build}"
        page = files.pop(PAGE, None)
        self.page = (
            page.replace(ASSETS_PLACEHOLDER.encode(), self.prefix.encode()) if page else None
        )
        self.page_etag = f'"{hashlib.sha256(self.page or b"").hexdigest()[:20]}"'
        self.assets = {name: Asset(content, _media_type(name)) for name, content in files.items()}


def _media_type(name: str) -> str:
    suffix = Path(name).suffix
    guessed = _TEXT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def build_router(web: WebApp) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    async def page(request: Request) -> Response:
        if web.page is None:
            raise NotFound("The web app is not part of this installation.")
        headers = {
            "Cache-Control": "no-cache",
            "ETag": web.page_etag,
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        }
        if request.headers.get("if-none-match") == web.page_etag:
            return Response(status_code=304, headers=headers)
        return Response(web.page, media_type="text/html; charset=utf-8", headers=headers)

    router.add_api_route("/", page, methods=["GET"])
    for section in UI_SECTIONS:
        router.add_api_route(f"/{section}", page, methods=["GET"])
        router.add_api_route(f"/{section}/{{rest:path}}", page, methods=["GET"])

    @router.get("/assets/{build}/{name:path}")
    async def asset(build: str, name: str) -> Response:
        found = web.assets.get(name) if build == web.build else None
        if found is None:
            raise NotFound("No such file in this version of the web app.")
        return Response(
            found.content, media_type=found.media_type, headers={"Cache-Control": IMMUTABLE}
        )

    return router
