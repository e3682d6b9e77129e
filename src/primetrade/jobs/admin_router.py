"""Dead jobs for admins: `/admin/jobs`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from primetrade.auth.dependencies import AdminUser
from primetrade.jobs import service
from primetrade.jobs.models import DeadJob
from primetrade.jobs.schemas import DeadJobRead
from primetrade.kit.errors import problem_responses
from primetrade.kit.pagination import Page
from primetrade.runtime import RuntimeDep, SessionDep

router = APIRouter(
    prefix="/admin/jobs",
    tags=["admin"],
    responses=problem_responses(401, 403, 429),
)


@router.get("", response_model=Page[DeadJobRead], responses=problem_responses(400, 422))
async def list_dead_jobs(
    _admin: AdminUser,
    session: SessionDep,
    runtime: RuntimeDep,
    job_type: Annotated[str | None, Query(max_length=100, description="Only this type.")] = None,
    retried: Annotated[
        bool | None, Query(description="Only jobs already sent again (true) or not (false).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    include_total: bool = False,
) -> Page[DeadJobRead]:
    """Jobs that failed on every attempt, most recent first."""
    return await service.search(
        session,
        runtime.cursors,
        job_type=job_type,
        retried=retried,
        limit=limit,
        cursor=cursor,
        include_total=include_total,
    )


@router.get("/{job_id}", response_model=DeadJobRead, responses=problem_responses(404, 422))
async def read_dead_job(job_id: uuid.UUID, _admin: AdminUser, session: SessionDep) -> DeadJob:
    """One dead job, with its error."""
    return await service.get(session, job_id)


@router.post(
    "/{job_id}/retry",
    response_model=DeadJobRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(404, 409, 422),
)
async def retry_dead_job(job_id: uuid.UUID, _admin: AdminUser, session: SessionDep) -> DeadJob:
    """Send a dead job again from its first attempt; it runs once the change commits."""
    return await service.retry(session, job_id)
