"""Any user's tasks, for admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from primetrade.auth.dependencies import AdminUser
from primetrade.kit.conditional import etag
from primetrade.kit.errors import problem_responses
from primetrade.kit.pagination import Page
from primetrade.runtime import RuntimeDep, SessionDep
from primetrade.tasks import service
from primetrade.tasks.dependencies import AnyTaskFromPath, IfMatch
from primetrade.tasks.schemas import AdminTaskQuery, AdminTaskRead, TaskUpdate

router = APIRouter(
    prefix="/admin/tasks", tags=["admin"], responses=problem_responses(401, 403, 429)
)


def admin_task_response(task: object) -> Response:
    read = AdminTaskRead.model_validate(task)
    return Response(
        read.model_dump_json().encode(),
        headers={"ETag": etag(read.version)},
        media_type="application/json",
    )


@router.get("", response_model=Page[AdminTaskRead], responses=problem_responses(400, 422))
async def list_all_tasks(
    query: Annotated[AdminTaskQuery, Query()],
    admin: AdminUser,
    session: SessionDep,
    runtime: RuntimeDep,
) -> object:
    """Every user's tasks (filter by `owner_id`), with the same filters as `/tasks`."""
    return await service.list_tasks(session, runtime, admin, query, as_admin=True)


@router.get("/{task_id}", response_model=AdminTaskRead, responses=problem_responses(404, 422))
async def read_any_task(task: AnyTaskFromPath) -> Response:
    """Any task."""
    return admin_task_response(task)


@router.patch(
    "/{task_id}", response_model=AdminTaskRead, responses=problem_responses(404, 409, 412, 422)
)
async def update_any_task(
    changes: TaskUpdate, task: AnyTaskFromPath, session: SessionDep, if_match: IfMatch
) -> Response:
    """Change any task."""
    return admin_task_response(await service.update(session, task, changes, expected=if_match))


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 409, 412, 422),
)
async def delete_any_task(
    task: AnyTaskFromPath, session: SessionDep, if_match: IfMatch
) -> Response:
    """Delete any task."""
    await service.delete(session, task, expected=if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
