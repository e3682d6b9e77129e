"""The payload of a `mail.send` job."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, field_validator

from primetrade.mail.render import templates


class MailJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: EmailStr
    template: str
    context: dict[str, Any]
    user_id: uuid.UUID | None = None

    @field_validator("template")
    @classmethod
    def _known_template(cls, value: str) -> str:
        if value not in templates():
            raise ValueError(f"no email template {value!r}")
        return value
