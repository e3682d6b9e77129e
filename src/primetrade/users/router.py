"""The signed-in user's own account."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from primetrade.accounts import service as accounts_service
from primetrade.auth import service as auth_service
from primetrade.auth.dependencies import CurrentPrincipal, CurrentUser
from primetrade.kit.errors import problem_responses
from primetrade.runtime import RuntimeDep, SessionDep
from primetrade.users import service
from primetrade.users.models import User
from primetrade.users.schemas import PasswordChange, ProfileUpdate, UserRead

router = APIRouter(prefix="/users", tags=["users"], responses=problem_responses(401, 429))


@router.get("/me", response_model=UserRead)
async def read_me(user: CurrentUser) -> User:
    """Your account."""
    return user


@router.patch("/me", response_model=UserRead, responses=problem_responses(409, 422))
async def update_me(
    changes: ProfileUpdate, user: CurrentUser, session: SessionDep, runtime: RuntimeDep
) -> User:
    """Change your name, or your email (send `current_password` with it)."""
    return await accounts_service.update_profile(session, runtime, user, changes)


@router.post(
    "/me/password", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(422)
)
async def change_password(
    body: PasswordChange, principal: CurrentPrincipal, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Change your password; every other session is signed out."""
    await service.change_password(
        session, runtime, principal.user, body.current_password, body.new_password
    )
    await auth_service.revoke_other_sessions(
        session, principal.user.id, keep=principal.claims.session_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/me/sessions", status_code=status.HTTP_204_NO_CONTENT)
async def sign_out_other_sessions(principal: CurrentPrincipal, session: SessionDep) -> Response:
    """Sign out every other session of yours (other browsers and devices); this one stays."""
    await auth_service.revoke_other_sessions(
        session, principal.user.id, keep=principal.claims.session_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
