"""The signed-in user's tasks."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status

from primetrade.auth.dependencies import CurrentUser
from primetrade.kit.conditional import etag
from primetrade.kit.errors import problem_responses
from primetrade.kit.idempotency import replay_or_run
from primetrade.kit.pagination import Page
from primetrade.kit.responses import entry_response, model_response
from primetrade.runtime import RuntimeDep, SessionDep
from primetrade.tasks import hotpath, service
from primetrade.tasks.dependencies import IfMatch, IfNoneMatch, TaskFromPath, TimeZone
from primetrade.tasks.models import Task
from primetrade.tasks.schemas import TaskCreate, TaskQuery, TaskRead, TaskStats, TaskUpdate

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=problem_responses(401, 429))
IdempotencyKey = Annotated[str | None, Header(min_length=1, max_length=255)]


def task_response(task: Task, status_code: int = 200, **headers: str) -> Response:
    return model_response(
        TaskRead.model_validate(task), status_code, {"ETag": etag(task.version), **headers}
    )


@router.get("", response_model=Page[TaskRead], responses=problem_responses(400, 422))
async def list_tasks(
    query: Annotated[TaskQuery, Query()],
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    runtime: RuntimeDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Your tasks: filter, search, sort, and page with `cursor`; `If-None-Match` → 304."""
    query_key = service.query_key(query)
    # Its next cache hit for this query string can be answered in front of the framework.
    hotpath.remember_query(request.scope, query_key)
    page = await service.list_page(session, runtime, user, query, query_key)
    return entry_response(page, if_none_match)


@router.get("/stats", response_model=TaskStats, responses=problem_responses(422))
async def task_stats(
    user: CurrentUser, session: SessionDep, runtime: RuntimeDep, tz: TimeZone
) -> Response:
    """Counts by status and priority, overdue, due today and recently completed."""
    body = await service.stats_body(session, runtime, user, tz)
    return Response(body, media_type="application/json")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskRead,
    responses=problem_responses(409, 413, 415, 422),
)
async def create_task(
    data: TaskCreate,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Create a task. Send `Idempotency-Key` to make retries safe."""

    async def create() -> Response:
        task = await service.create(session, user, data)
        location = str(request.url_for("read_task", task_id=str(task.id)).path)
        return task_response(task, status.HTTP_201_CREATED, Location=location)

    return await replay_or_run(
        session, request, user.id, idempotency_key, create, runtime.settings.idempotency_ttl_seconds
    )


@router.get("/{task_id}", response_model=TaskRead, responses=problem_responses(404, 422))
async def read_task(
    task_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    runtime: RuntimeDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """One task, with its `ETag`; `If-None-Match` answers 304 when unchanged."""
    entry = await service.read_one(session, runtime, user, task_id)
    return entry_response(entry, if_none_match)


@router.patch(
    "/{task_id}", response_model=TaskRead, responses=problem_responses(404, 409, 412, 422)
)
async def update_task(
    changes: TaskUpdate, task: TaskFromPath, session: SessionDep, if_match: IfMatch
) -> Response:
    """Change some fields; with `If-Match`, only if the task is still at that version."""
    return task_response(await service.update(session, task, changes, expected=if_match))


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 409, 412, 422),
)
async def delete_task(task: TaskFromPath, session: SessionDep, if_match: IfMatch) -> Response:
    """Delete a task; with `If-Match`, only if it is still at that version."""
    await service.delete(session, task, expected=if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{task_id}/archive", response_model=TaskRead, responses=problem_responses(404, 409, 412, 422)
)
async def archive_task(task: TaskFromPath, session: SessionDep, if_match: IfMatch) -> Response:
    """Archive a task: it leaves the default list and the stats (list it with `archived=true`)."""
    return task_response(await service.archive(session, task, expected=if_match))


@router.post(
    "/{task_id}/restore", response_model=TaskRead, responses=problem_responses(404, 409, 412, 422)
)
async def restore_task(task: TaskFromPath, session: SessionDep, if_match: IfMatch) -> Response:
    """Bring an archived task back into the default list."""
    return task_response(await service.restore(session, task, expected=if_match))
