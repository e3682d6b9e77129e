"""Account administration (admins only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from primetrade.auth import service as auth_service
from primetrade.auth.dependencies import AdminUser
from primetrade.kit.errors import problem_responses
from primetrade.kit.pagination import Page
from primetrade.runtime import RuntimeDep, SessionDep
from primetrade.users import service
from primetrade.users.models import Role, User
from primetrade.users.schemas import AdminUserUpdate, UserRead

router = APIRouter(
    prefix="/admin/users",
    tags=["admin"],
    responses=problem_responses(401, 403, 429),
)


async def get_user_from_path(user_id: uuid.UUID, _admin: AdminUser, session: SessionDep) -> User:
    return await service.get(session, user_id)


UserFromPath = Annotated[User, Depends(get_user_from_path)]


@router.get("", response_model=Page[UserRead], responses=problem_responses(400, 422))
async def list_users(
    _admin: AdminUser,
    session: SessionDep,
    runtime: RuntimeDep,
    q: Annotated[str | None, Query(max_length=200, description="Part of email or name.")] = None,
    role: Role | None = None,
    is_active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    include_total: bool = False,
) -> Page[UserRead]:
    """Search accounts, newest first."""
    return await service.search(
        session,
        runtime,
        q=q,
        role=role,
        is_active=is_active,
        limit=limit,
        cursor=cursor,
        include_total=include_total,
    )


@router.get("/{user_id}", response_model=UserRead, responses=problem_responses(404, 422))
async def read_user(user: UserFromPath) -> User:
    """One account."""
    return user


@router.patch("/{user_id}", response_model=UserRead, responses=problem_responses(404, 409, 422))
async def update_user(
    changes: AdminUserUpdate, user: UserFromPath, admin: AdminUser, session: SessionDep
) -> User:
    """Change an account's role, active state or name; the last admin cannot be removed."""
    updated, deactivated = await service.admin_update(session, admin, user, changes)
    if deactivated:
        await auth_service.revoke_other_sessions(session, updated.id, keep=None)
    return updated


@router.delete(
    "/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404, 409, 422)
)
async def delete_user(user: UserFromPath, session: SessionDep) -> Response:
    """Delete an account and all its tasks."""
    await service.delete(session, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
