"""Importing tasks: each row validated with the rules of `POST /tasks`, then created.

Synchronous, within the request: the limits (IMPORT_MAX_BYTES, IMPORT_MAX_ROWS) keep one
import to a few thousand validated rows and one multi-row INSERT, well under a second, and
the client gets the report and the new ids in the same answer (a job would need a second
resource to poll for the same report). The request's single transaction is what makes
`all_or_nothing` exact: a refused import leaves nothing behind.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from primetrade.imports.exceptions import ImportRejected
from primetrade.imports.schemas import FieldError, ImportReport, RejectedRow
from primetrade.tasks import service as tasks
from primetrade.tasks.schemas import TaskCreate
from primetrade.users.models import User


def validate_rows(rows: list[Any]) -> tuple[list[TaskCreate], list[RejectedRow]]:
    """The valid rows as new tasks, and the invalid ones with their reasons."""
    valid: list[TaskCreate] = []
    rejected: list[RejectedRow] = []
    for number, row in enumerate(rows, start=1):
        try:
            valid.append(TaskCreate.model_validate(row))
        except ValidationError as exc:
            rejected.append(RejectedRow(row=number, errors=_field_errors(exc)))
    return valid, rejected


def _field_errors(exc: ValidationError) -> list[FieldError]:
    return [
        FieldError(
            field=".".join(str(part) for part in error["loc"]) or "(row)", message=error["msg"]
        )
        for error in exc.errors(include_url=False)
    ]


async def import_tasks(
    session: AsyncSession, owner: User, rows: list[Any], *, all_or_nothing: bool
) -> ImportReport:
    """Create the valid rows as the owner's tasks; with `all_or_nothing`, none unless all are."""
    valid, rejected = validate_rows(rows)
    report = ImportReport(accepted=len(valid), rejected=rejected)
    if all_or_nothing and rejected:
        raise ImportRejected(report.model_dump(mode="json", exclude_none=True))
    if valid:
        created = await tasks.create_many(session, owner, valid)
        report.created_ids = [task.id for task in created]
    return report
