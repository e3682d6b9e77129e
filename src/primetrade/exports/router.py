"""Exports of the signed-in user's tasks: ask, follow, download."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import FileResponse

from primetrade.auth.dependencies import CurrentUser
from primetrade.exports import service
from primetrade.exports.dependencies import ExportFromPath
from primetrade.exports.files import MEDIA_TYPES, download_name
from primetrade.exports.schemas import ExportCreate, ExportList, ExportRead
from primetrade.kit.db import utcnow
from primetrade.kit.errors import problem_responses
from primetrade.kit.responses import model_response
from primetrade.runtime import RuntimeDep, SessionDep

router = APIRouter(prefix="/exports", tags=["exports"], responses=problem_responses(401, 429))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExportRead,
    responses=problem_responses(413, 415, 422),
)
async def create_export(
    data: ExportCreate, request: Request, user: CurrentUser, session: SessionDep
) -> Response:
    """Export your tasks (the task list's filters) as CSV or JSON; built in the background."""
    export = await service.create(session, user, data)
    location = str(request.url_for("read_export", export_id=str(export.id)).path)
    read = ExportRead.of(export, utcnow())
    return model_response(read, status.HTTP_202_ACCEPTED, {"Location": location})


@router.get("", response_model=ExportList, responses=problem_responses(422))
async def list_exports(
    user: CurrentUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ExportList:
    """Your latest exports, newest first."""
    now = utcnow()
    exports = await service.newest(session, user, limit)
    return ExportList(items=[ExportRead.of(export, now) for export in exports])


@router.get("/{export_id}", response_model=ExportRead, responses=problem_responses(404, 422))
async def read_export(export: ExportFromPath) -> ExportRead:
    """An export's status and progress."""
    return ExportRead.of(export, utcnow())


@router.get(
    "/{export_id}/file",
    response_class=FileResponse,
    responses={
        200: {"content": {"text/csv": {}, "application/json": {}}, "description": "The file."},
        **problem_responses(404, 409, 422),
    },
)
async def download_export(export: ExportFromPath, runtime: RuntimeDep) -> FileResponse:
    """Download a ready export (409 while it is being built, 404 once it expired)."""
    path = service.ready_file(export, runtime.settings)
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[export.format],
        filename=download_name(export.id, export.format),
    )
