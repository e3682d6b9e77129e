"""Importing tasks from a CSV or JSON file (the export format included)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from primetrade.auth.dependencies import CurrentUser
from primetrade.imports import parsing, service
from primetrade.imports.dependencies import ImportFile
from primetrade.imports.schemas import ImportReport
from primetrade.kit.errors import problem_responses
from primetrade.runtime import RuntimeDep, SessionDep

router = APIRouter(prefix="/imports", tags=["imports"], responses=problem_responses(401, 429))
_BODY = {
    "required": True,
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        # Rows of any shape are taken: each is validated and reported on its own.
        "application/json": {"schema": {"type": "array", "items": {}}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
    },
}


@router.post(
    "",
    response_model=ImportReport,
    response_model_exclude_none=True,
    responses=problem_responses(413, 415, 422),
    openapi_extra={"requestBody": _BODY},
)
async def import_tasks(
    upload: ImportFile,
    user: CurrentUser,
    session: SessionDep,
    runtime: RuntimeDep,
    all_or_nothing: Annotated[
        bool, Query(description="true: one invalid row → 422 and nothing is created.")
    ] = False,
) -> ImportReport:
    """Create tasks from CSV or JSON rows; a report of accepted and rejected rows."""
    data, file_format = upload
    rows = parsing.parse(data, file_format, max_rows=runtime.settings.import_max_rows)
    return await service.import_tasks(session, user, rows, all_or_nothing=all_or_nothing)
