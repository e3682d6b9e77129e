"""Typed application errors and their RFC 9457 problem+json rendering."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from primetrade.kit.logging import get_logger

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = get_logger(__name__)


class AppError(Exception):
    """An error a client can act on: a status, a stable code and a human sentence."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = dict(headers or {})

    def extra(self) -> dict[str, Any]:
        return {}


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class PreconditionFailed(AppError):
    status, code, title = 412, "precondition_failed", "Precondition failed"


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Not authenticated"

    def __init__(self, detail: str | None = None, *, error: str | None = "invalid_token"):
        # RFC 6750, 3.1: a request that sent no credentials at all gets a bare challenge.
        challenge = 'Bearer realm="primetrade"' + (f', error="{error}"' if error else "")
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class InvalidInput(AppError):
    """A semantic validation failure outside the request schema (422 with field errors)."""

    status, code, title = 422, "validation_failed", "Invalid input"

    def __init__(self, detail: str, *, field: Sequence[str | int] = ()):
        super().__init__(detail)
        self.field = list(field)

    def extra(self) -> dict[str, Any]:
        return {"errors": [{"loc": self.field, "msg": self.detail, "type": self.code}]}


class ServiceUnavailable(AppError):
    status, code, title = 503, "service_unavailable", "Service unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5):
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class TooManyRequests(AppError):
    status, code, title = 429, "rate_limited", "Too many requests"


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def problem_body(
    status: int,
    *,
    code: str | None = None,
    title: str | None = None,
    detail: str | None = None,
    instance: str | None = None,
    request_id: str | None = None,
    **extra: Any,
) -> bytes:
    code = code or _STATUS_CODES.get(status, "error")
    body: dict[str, Any] = {
        "type": f"https://primetrade.dev/problems/{code.replace('_', '-')}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return orjson.dumps(body)


def problem_response(
    request: Request | None,
    status: int,
    *,
    headers: Mapping[str, str] | None = None,
    **fields: Any,
) -> Response:
    instance = request.url.path if request is not None else None
    request_id = request.scope.get("request_id") if request is not None else None
    content = problem_body(status, instance=instance, request_id=request_id, **fields)
    return Response(content, status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE)


def _validation_errors(errors: Iterable[Any]) -> list[dict[str, Any]]:
    cleaned = []
    for error in errors:
        loc = [part for part in error.get("loc", ()) if part != "body"] or ["body"]
        if error.get("type") == "json_invalid":
            loc = ["body"]  # FastAPI puts the byte offset here, which is no field
        cleaned.append({"loc": loc, "msg": error.get("msg", "invalid"), "type": error.get("type")})
    return cleaned


async def _app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return problem_response(
        request,
        exc.status,
        headers=exc.headers,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        **exc.extra(),
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return problem_response(
        request,
        422,
        title="Invalid input",
        detail="The request did not validate; see errors.",
        errors=_validation_errors(exc.errors()),
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # JSON must be UTF-8; such a body is as malformed as a syntax error, so it is answered
        # the same way FastAPI answers one (422 `json_invalid`), not with a bare 400.
        return problem_response(
            request,
            422,
            title="Invalid input",
            detail="The request did not validate; see errors.",
            errors=[{"loc": ["body"], "msg": "The body is not UTF-8.", "type": "json_invalid"}],
        )
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return problem_response(request, exc.status_code, headers=headers, detail=detail)


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method the path answers; Starlette names only those of its first matching route."""
    routes = request.app.router.routes

    def answers(method: str) -> bool:
        probe = {**request.scope, "method": method}
        return any(route.matches(probe)[0] is Match.FULL for route in routes)

    return ", ".join(method for method in _METHODS if answers(method))


async def _database_error(request: Request, exc: Exception) -> Response:
    # Connection-level failures mean the database is away: say so quickly and let the client
    # retry. Anything else from the driver is a bug on our side and stays a 500.
    if isinstance(exc, PoolTimeoutError) or is_disconnect(exc):
        log.warning("database_unavailable", error=type(exc).__name__)
        return problem_response(
            request,
            503,
            headers={"Retry-After": "5"},
            code="database_unavailable",
            detail="The database is not reachable right now; try again shortly.",
        )
    if _is_transient(exc):
        log.warning("database_busy", error=type(getattr(exc, "orig", exc)).__name__)
        return problem_response(
            request,
            503,
            headers={"Retry-After": "1"},
            code="database_busy",
            detail="The database is busy; try again shortly.",
        )
    return await _unhandled(request, exc)


# SQLSTATEs that say "try again", not "this request is wrong": serialization failure, deadlock,
# lock wait or statement timeout (query_canceled).
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57014"})


def _is_transient(exc: Exception) -> bool:
    original = getattr(exc, "orig", exc)
    sqlstate = getattr(original, "sqlstate", None) or getattr(
        getattr(original, "__cause__", None), "sqlstate", None
    )
    if sqlstate in _TRANSIENT_SQLSTATES:
        return True
    # SQLite's lock timeout (`busy_timeout` ran out): "database is locked" / "database is busy".
    message = str(original).lower()
    return "database is locked" in message or "database is busy" in message


def is_disconnect(exc: Exception) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # A refused or timed-out connect is not wrapped by SQLAlchemy: the bare OSError arrives.
    original = getattr(exc, "orig", exc)
    return (
        isinstance(original, OSError | ConnectionError)
        or "connect" in type(original).__name__.lower()
    )


async def _unhandled(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", exc_info=exc)
    return problem_response(request, 500, detail="An unexpected error occurred.")


def install_error_handlers(app: FastAPI) -> None:
    """Render every error the app can raise as problem+json."""
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeoutError, _database_error)
    app.add_exception_handler(OSError, _database_error)
    app.add_exception_handler(Exception, _unhandled)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problems a route can answer."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}},
        }
        for status in statuses
    }
