"""Plain ASGI middleware: request context and metrics, security headers, body size cap."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

import structlog
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from primetrade.kit.errors import PROBLEM_MEDIA_TYPE, problem_body
from primetrade.kit.logging import get_logger
from primetrade.kit.metrics import REQUEST_DURATION, REQUESTS_IN_FLIGHT

access_log = get_logger("primetrade.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def route_template(scope: Scope) -> str:
    """The matched route's template (`/api/v1/tasks/{task_id}`), never the raw path.

    A route knows only its own part of the template (`/tasks/{task_id}`); the rest is the
    prefixes of the routers that include it, which is the text of the path before the part
    the route's pattern matches. Keeps metric labels bounded: ids never become label values.
    """
    route = scope.get("route")
    path_format: str | None = getattr(route, "path_format", None)
    pattern: re.Pattern[str] | None = getattr(route, "path_regex", None)
    if path_format is None or pattern is None:
        return "unmatched"
    path: str = scope["path"]
    for index, char in enumerate(path):
        if char == "/" and pattern.match(path[index:]):
            return path[:index] + path_format
    return path_format


class RequestContextMiddleware:
    """Request id in and out, one access-log line and the request metrics."""

    def __init__(self, app: ASGIApp, *, access_log_enabled: bool = True) -> None:
        self.app = app
        self.access_log_enabled = access_log_enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        started = time.perf_counter()

        status_sent = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status, status_sent = message["status"], True
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        REQUESTS_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # The last line of defence: log the traceback, show the client a bare 500.
            access_log.exception("unhandled_error", route=route_template(scope))
            if status_sent:
                raise
            status = 500
            await send_problem(send_with_id, scope, 500, "An unexpected error occurred.")
        finally:
            REQUESTS_IN_FLIGHT.dec()
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        route = route_template(scope)
        REQUEST_DURATION.labels(route, scope["method"], str(status)).observe(elapsed)
        if self.access_log_enabled:
            access_log.info(
                "request",
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
                client=(scope.get("client") or ("-",))[0],
                user_id=scope.get("user_id"),
            )


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _REQUEST_ID.match(candidate) else None
    return None


class SecurityHeadersMiddleware:
    """Headers every response carries; HSTS only when the request came over TLS."""

    _ALWAYS = (
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
    )

    def __init__(self, app: ASGIApp, *, no_store_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.no_store_prefixes = no_store_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = scope["path"].startswith(self.no_store_prefixes)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self._ALWAYS:
                    headers.setdefault(name.decode(), value.decode())
                if no_store:
                    headers["Cache-Control"] = "no-store"
                if scope.get("scheme") == "https":
                    headers.setdefault("Strict-Transport-Security", "max-age=63072000")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodySizeLimitMiddleware:
    """Refuse request bodies above a size with 413, whether announced or streamed."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the app, so the problem+json handler renders it.
                    raise HTTPException(
                        413, f"The request body is larger than {self.max_bytes} bytes."
                    )
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        detail = f"The request body is larger than {self.max_bytes} bytes."
        await send_problem(send, scope, 413, detail, extra_headers=[(b"connection", b"close")])


AcceptedMediaTypes = Callable[[str, str], frozenset[str] | None]


class MediaTypeMiddleware:
    """Refuse a request body in a media type its operation does not take, with 415.

    Without this, a `text/plain` body sent to a JSON operation would fail validation with a
    misleading 422. `accepted(method, path)` names the media types an operation takes, or None
    when the request matches no operation with a body (routing then answers as usual).
    """

    def __init__(self, app: ASGIApp, *, accepted: AcceptedMediaTypes) -> None:
        self.app = app
        self.accepted = accepted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        accepted = self.accepted(scope["method"], scope["path"])
        if accepted is None or _media_type_in(first_header(scope, b"content-type"), accepted):
            await self.app(scope, receive, send)
            return
        names = ", ".join(sorted(accepted))
        detail = f"Send the request body as {names}."
        await send_problem(send, scope, 415, detail)


def _has_body(scope: Scope) -> bool:
    if first_header(scope, b"transfer-encoding") is not None:
        return True
    length = _content_length(scope)
    return length is not None and length > 0


def _media_type_in(content_type: str | None, accepted: frozenset[str]) -> bool:
    if content_type is None:
        return False
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type in accepted:
        return True
    # `application/problem+json` and friends are JSON too (FastAPI parses them as such).
    return "application/json" in accepted and (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def first_header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name`, as Starlette's `Headers.get` gives it."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def bearer_token(scope: Scope) -> str | None:
    """The bearer token of the request, read as FastAPI's OAuth2PasswordBearer reads it.

    The first `Authorization` header, split at its first space; the scheme compared without
    case, the token stripped. Unverified: the caller decides what it proves.
    """
    scheme, _, token = (first_header(scope, b"authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def send_problem(
    send: Send,
    scope: Scope,
    status: int,
    detail: str,
    *,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
    code: str | None = None,
) -> None:
    body = problem_body(
        status,
        code=code,
        detail=detail,
        instance=scope["path"],
        request_id=scope.get("request_id"),
    )
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class HeadMiddleware:
    """Answer HEAD wherever GET is answered: the same status and headers, no body.

    HTTP requires it (RFC 9110, 9.3.2) and load balancers and uptime checkers probe with it;
    FastAPI's routes only answer the methods they declare.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)
