"""The signed-in user's notification settings."""

from __future__ import annotations

from fastapi import APIRouter

from primetrade.auth.dependencies import CurrentUser
from primetrade.kit.errors import problem_responses
from primetrade.notifications import service
from primetrade.notifications.schemas import NotificationSettingsRead, NotificationSettingsUpdate
from primetrade.runtime import SessionDep

router = APIRouter(
    prefix="/users/me/notifications", tags=["users"], responses=problem_responses(401, 429)
)


@router.get("", response_model=NotificationSettingsRead)
async def read_notifications(user: CurrentUser, session: SessionDep) -> NotificationSettingsRead:
    """Which emails about your tasks you get."""
    return await service.get(session, user.id)


@router.patch("", response_model=NotificationSettingsRead, responses=problem_responses(422))
async def update_notifications(
    changes: NotificationSettingsUpdate, user: CurrentUser, session: SessionDep
) -> NotificationSettingsRead:
    """Turn the daily digest or due-date reminders on or off."""
    return await service.update(session, user.id, changes)
