"""Sign-in for the web app: the refresh token in a cookie the page's scripts cannot read.

The JSON endpoints (`/auth/login`, `/auth/refresh`, `/auth/logout`) hand both tokens to the
client, which suits programs. A browser page should keep its refresh token out of reach of
any script that runs in it, so these endpoints keep the same sessions but carry the refresh
token in an `HttpOnly`, `SameSite=Strict` cookie scoped to this path; the page holds only the
short-lived access token, in memory.

A cookie is sent by the browser on its own, so these endpoints are guarded against
cross-site requests, in depth (see `same_origin_only`): a custom header that no cross-site
form can set and no cross-origin script may send without a CORS preflight this app does not
grant, plus the browser's own `Sec-Fetch-Site` and `Origin` statements where it sends them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Cookie, Depends, Header, Request, Response, status
from pydantic import BaseModel, Field

from primetrade.auth import service
from primetrade.auth.router import sign_in as sign_in_with
from primetrade.auth.schemas import LoginRequest, TokenPair
from primetrade.kit.errors import AppError, Unauthorized, problem_responses
from primetrade.runtime import RuntimeDep, SessionDep

SESSION_PATH = "/api/v1/auth/session"
COOKIE_NAME = "primetrade_refresh"
CSRF_HEADER = "X-Requested-With"
CSRF_VALUE = "primetrade"


class CsrfRejected(AppError):
    status, code, title = 403, "csrf_rejected", "Cross-site request refused"


class AccessToken(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int = Field(description="Seconds until the access token expires.")


def same_origin_only(
    request: Request,
    runtime: RuntimeDep,
    requested_with: Annotated[str | None, Header(alias=CSRF_HEADER)] = None,
) -> None:
    """Refuse a request that a page of another site could have made the browser send."""
    if requested_with != CSRF_VALUE:
        raise CsrfRejected(f"Send the header {CSRF_HEADER}: {CSRF_VALUE}.")
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise CsrfRejected("Requests from other sites may not use the session cookie.")
    origin = request.headers.get("origin")
    if origin is not None and origin not in _own_origins(request, runtime.settings.cors_origins):
        raise CsrfRejected("Requests from other origins may not use the session cookie.")


def _own_origins(request: Request, cors_origins: list[str]) -> set[str]:
    host = request.headers.get("host", "")
    return {f"{request.url.scheme}://{host}", *(o.rstrip("/") for o in cors_origins)}


SameOrigin = Depends(same_origin_only)
RefreshCookie = Annotated[str | None, Cookie(alias=COOKIE_NAME, include_in_schema=False)]
router = APIRouter(
    prefix="/auth/session",
    tags=["auth"],
    dependencies=[SameOrigin],
    responses=problem_responses(403, 429),
)


@router.post("", response_model=AccessToken, responses=problem_responses(401, 422))
async def sign_in(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
    user_agent: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> AccessToken:
    """Sign in: the access token in the body, the refresh token in an HttpOnly cookie."""
    pair = await sign_in_with(request, session, runtime, body.email, body.password, user_agent)
    return _answer(request, response, runtime.settings.refresh_token_ttl_seconds, pair)


@router.post("/refresh", response_model=AccessToken, responses=problem_responses(401))
async def refresh(
    request: Request,
    response: Response,
    session: SessionDep,
    runtime: RuntimeDep,
    token: RefreshCookie = None,
) -> AccessToken:
    """A new access token for the cookie's session; the cookie rotates with it."""
    if not token:
        raise _ended(request, "There is no session to refresh; sign in.")
    try:
        pair = await service.refresh(session, runtime, token)
    except Unauthorized as exc:
        raise _ended(request, exc.detail) from exc
    return _answer(request, response, runtime.settings.refresh_token_ttl_seconds, pair)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
async def sign_out(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    token: RefreshCookie = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """End the cookie's session (and deny the access token sent with it); always 204.

    No sign-in is required: the page may hold only an expired access token by now, and the
    cookie alone proves the session. Tokens that prove nothing are ignored.
    """
    scheme, _, credentials = (authorization or "").partition(" ")
    access = credentials.strip() if scheme.lower() == "bearer" else None
    await service.end_session(session, runtime, refresh_token=token, access_token=access)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.headers["Set-Cookie"] = _cookie(request, "", max_age=0)
    return response


def _answer(request: Request, response: Response, max_age: int, pair: TokenPair) -> AccessToken:
    response.headers["Set-Cookie"] = _cookie(request, pair.refresh_token, max_age=max_age)
    return AccessToken(access_token=pair.access_token, expires_in=pair.expires_in)


def _ended(request: Request, detail: str) -> Unauthorized:
    """A 401 that also removes the dead cookie."""
    error = Unauthorized(detail, error="invalid_grant")
    error.headers["Set-Cookie"] = _cookie(request, "", max_age=0)
    return error


def _cookie(request: Request, value: str, *, max_age: int) -> str:
    # Built by hand rather than with Response.set_cookie so a problem response (raised as an
    # error, rendered elsewhere) can carry the same header.
    parts = [
        f"{COOKIE_NAME}={value}",
        f"Path={SESSION_PATH}",
        f"Max-Age={max_age}",
        "HttpOnly",
        "SameSite=Strict",
    ]
    if request.url.scheme == "https":
        parts.append("Secure")
    return "; ".join(parts)
