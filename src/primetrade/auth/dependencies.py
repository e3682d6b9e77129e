"""Who is calling: `CurrentPrincipal`, `CurrentUser` and `AdminUser`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from primetrade.auth import service
from primetrade.auth.service import Principal
from primetrade.kit.errors import Forbidden, Unauthorized
from primetrade.runtime import SAFE_METHODS, RuntimeDep, SessionDep
from primetrade.users.models import User

bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def get_principal(
    request: Request, runtime: RuntimeDep, session: SessionDep, token: str | None = Depends(bearer)
) -> Principal:
    if not token:
        sent_something = "authorization" in request.headers
        raise Unauthorized(
            "Sign in and send the access token as a Bearer token.",
            error="invalid_request" if sent_something else None,
        )
    cacheable = request.method in SAFE_METHODS
    principal = await service.authenticate(session, runtime, token, cacheable=cacheable)
    request.scope["user_id"] = str(principal.user.id)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_current_user(principal: CurrentPrincipal) -> User:
    return principal.user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden("This needs an admin account.")
    return user


AdminUser = Annotated[User, Depends(get_admin)]
