"""Reports on the signed-in user's tasks."""

from __future__ import annotations

from fastapi import APIRouter

from primetrade.auth.dependencies import CurrentUser
from primetrade.kit.errors import problem_responses
from primetrade.reports import service
from primetrade.reports.schemas import WeeklyReport
from primetrade.runtime import SessionDep
from primetrade.tasks.dependencies import TimeZone

router = APIRouter(prefix="/reports", tags=["reports"], responses=problem_responses(401, 429))


@router.get("/weekly", response_model=WeeklyReport, responses=problem_responses(422))
async def weekly_report(user: CurrentUser, session: SessionDep, tz: TimeZone) -> WeeklyReport:
    """Created, completed and overdue tasks over the last seven days (days in `tz`)."""
    return await service.weekly(session, user, tz)
