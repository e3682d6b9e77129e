"""The notification settings API contract and what the emails are built from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictBool

from primetrade.users.schemas import Input


class NotificationSettingsRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    daily_digest: bool
    due_reminders: bool
    weekly_report: bool


class NotificationSettingsUpdate(Input):
    """Turn the daily digest, due-date reminders or the weekly report email on or off."""

    daily_digest: StrictBool | None = None
    due_reminders: StrictBool | None = None
    weekly_report: StrictBool | None = None
