"""The application factory: middleware, routers and error handlers around one Runtime."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import Scope
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from primetrade import health
from primetrade.accounts.router import router as accounts_router
from primetrade.auth.browser import router as browser_session_router
from primetrade.auth.router import router as auth_router
from primetrade.auth.tokens import InvalidToken
from primetrade.exports.router import router as exports_router
from primetrade.imports.router import router as imports_router
from primetrade.jobs.admin_router import router as admin_jobs_router
from primetrade.jobs.background import Background
from primetrade.kit.errors import install_error_handlers, problem_responses
from primetrade.kit.logging import configure_logging
from primetrade.kit.middleware import (
    AcceptedMediaTypes,
    BodySizeLimitMiddleware,
    HeadMiddleware,
    MediaTypeMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
    bearer_token,
)
from primetrade.kit.ratelimit import RateLimitMiddleware
from primetrade.notifications.router import router as notifications_router
from primetrade.reports.router import router as reports_router
from primetrade.runtime import Runtime
from primetrade.settings import LogFormat, Settings, get_settings
from primetrade.tasks.admin_router import router as admin_tasks_router
from primetrade.tasks.hotpath import CachedTaskListMiddleware
from primetrade.tasks.router import router as tasks_router
from primetrade.users.admin_router import router as admin_users_router
from primetrade.users.router import router as users_router
from primetrade.web.router import WebApp, build_router

API_PREFIX = "/api/v1"
AUTH_PATHS = frozenset(
    f"{API_PREFIX}/auth/{name}"
    for name in (
        "register",
        "login",
        "token",
        "refresh",
        "verify-email",
        "verify-email/resend",
        "password-reset",
        "password-reset/confirm",
        # Sign-in from the web app. Not its refresh: the page calls that on every load, and
        # the cookie it needs (a random 256-bit token) cannot be guessed anyway.
        "session",
    )
)
NO_STORE_PREFIXES = tuple(f"{API_PREFIX}/{name}" for name in ("auth", "users", "admin"))
PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "Stable machine-readable error code."},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI app for `settings` (default: from the environment)."""
    settings = settings or get_settings()
    configure_logging(
        json=settings.effective_log_format is LogFormat.json, level=settings.log_level
    )
    runtime = Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        # The outbox relay (and, without a broker, the jobs and the schedule themselves).
        background = app.state.background = Background(
            settings, runtime.sessions, runtime.read_sessions
        )
        await background.start()
        yield
        await background.stop()
        await runtime.close()

    app = FastAPI(
        title="PrimeTrade Tasks",
        version="1.0.0",
        summary="Tasks for people and teams: sign in, plan, filter, search.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    api = APIRouter(prefix=API_PREFIX)
    for router in (
        auth_router,
        browser_session_router,
        users_router,
        tasks_router,
        admin_users_router,
        admin_tasks_router,
    ):
        api.include_router(router)
    api.include_router(admin_jobs_router)
    api.include_router(accounts_router)
    api.include_router(notifications_router)
    for router in (exports_router, imports_router, reports_router):
        api.include_router(router)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(build_router(WebApp()))
    _install_middleware(app, runtime)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _install_middleware(app: FastAPI, runtime: Runtime) -> None:
    settings = runtime.settings

    def identify(scope: Scope) -> str | None:
        token = bearer_token(scope)
        if token is None:
            return None
        try:
            return str(runtime.tokens.decode_access(token).user_id)
        except InvalidToken:
            return None

    # Added innermost first: the last one added sees the request first.
    app.add_middleware(CachedTaskListMiddleware, runtime=runtime, path=f"{API_PREFIX}/tasks")
    app.add_middleware(HeadMiddleware)
    app.add_middleware(MediaTypeMiddleware, accepted=_body_media_types(app))
    app.add_middleware(
        RateLimitMiddleware,
        limiter=runtime.limiter,
        identify=identify,
        prefix=API_PREFIX,
        auth_paths=AUTH_PATHS,
    )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Idempotency-Key",
                "X-Request-ID",
            ],
            expose_headers=[
                "ETag",
                "Location",
                "X-Request-ID",
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            ],
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware, access_log_enabled=settings.access_log)
    # Outside the request context, so its last-resort 500 carries the security headers too.
    app.add_middleware(SecurityHeadersMiddleware, no_store_prefixes=NO_STORE_PREFIXES)
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies or [])


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        _document_shared_problems(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def _document_shared_problems(schema: dict[str, Any]) -> None:
    """Add the problems the middleware can answer on any operation to each one it covers.

    Rate limits (429) and a database outage (503) apply to every API call; a body can be too
    large (413), in a media type the operation does not take (415), or invalid (422).
    """
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(API_PREFIX):
            continue
        for operation in operations.values():
            statuses = [429, 503]
            if "requestBody" in operation:
                statuses += [413, 415, 422]
            responses = operation.setdefault("responses", {})
            for status, response in problem_responses(*statuses).items():
                responses.setdefault(str(status), response)
            operation["responses"] = dict(sorted(responses.items()))


_PARAMETER = re.compile(r"\{([^}:]+)(:path)?\}")


def _body_media_types(app: FastAPI) -> AcceptedMediaTypes:
    """`(method, path) -> media types its request body may use`, read from the OpenAPI spec."""
    table: list[tuple[str, re.Pattern[str], frozenset[str]]] | None = None

    def accepted(method: str, path: str) -> frozenset[str] | None:
        nonlocal table
        if table is None:
            table = _operations_with_bodies(app.openapi())
        for operation_method, pattern, media_types in table:
            if operation_method == method and pattern.fullmatch(path):
                return media_types
        return None

    return accepted


def _operations_with_bodies(
    schema: dict[str, Any],
) -> list[tuple[str, re.Pattern[str], frozenset[str]]]:
    rows = []
    for template, operations in schema.get("paths", {}).items():
        pattern = _template_pattern(template)
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if content:
                parameters = len(_PARAMETER.findall(template))
                rows.append((parameters, method.upper(), pattern, frozenset(content)))
    # Fixed paths before templated ones, as the router prefers them (`/tasks/stats`).
    rows.sort(key=lambda row: row[0])
    return [(method, pattern, media_types) for _, method, pattern, media_types in rows]


def _template_pattern(template: str) -> re.Pattern[str]:
    parts, position = [], 0
    for match in _PARAMETER.finditer(template):
        parts.append(re.escape(template[position : match.start()]))
        parts.append(".+" if match.group(2) else "[^/]+")
        position = match.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts))
