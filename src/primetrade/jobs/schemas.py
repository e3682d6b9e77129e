"""The admin API's view of dead jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DeadJobRead(BaseModel):
    """A job that failed on every attempt."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    job_type: str = Field(description="What the job does, e.g. `mail.send`.")
    payload: dict[str, Any]
    run_key: str = Field(description="The job's idempotency key.")
    error: str = Field(description="The last attempt's error and where it was raised.")
    attempts: int
    failed_at: datetime
    retried_at: datetime | None = Field(None, description="When an admin sent it again.")
