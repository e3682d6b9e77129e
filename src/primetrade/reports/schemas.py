"""The weekly report's contract."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from primetrade.tasks.models import TaskPriority, TaskStatus


class WeeklyReport(BaseModel):
    period_start: datetime = Field(
        description="Midnight (in `tz`) six days before today, shown in UTC."
    )
    period_end: datetime = Field(description="When the report was made.")
    created: int = Field(description="Tasks created in the period (archived ones included).")
    completed: int = Field(description="Tasks completed in the period (archived ones included).")
    overdue: int = Field(description="Unarchived tasks not done and past due, now.")
    by_status: dict[TaskStatus, int] = Field(description="Unarchived tasks, now.")
    by_priority: dict[TaskPriority, int] = Field(description="Unarchived open tasks, now.")

    @property
    def had_activity(self) -> bool:
        return self.created > 0 or self.completed > 0
