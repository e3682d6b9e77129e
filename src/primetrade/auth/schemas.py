"""The auth API contract."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from primetrade.users.schemas import Email, FullName, Input, Password


class RegisterRequest(Input):
    email: Email
    password: Password
    full_name: FullName | None = None

    @field_validator("password")
    @classmethod
    def _password_is_not_email(cls, password: str, info: ValidationInfo) -> str:
        # A field validator (not a model one), so the error points at `password`; `email` is
        # declared first, hence already validated and normalised here.
        if password.strip().lower() == info.data.get("email"):
            raise ValueError("the password must not be the email address")
        return password


class LoginRequest(Input):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=128)


class RefreshRequest(Input):
    refresh_token: str = Field(min_length=1, max_length=256)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105
    expires_in: int = Field(description="Seconds until the access token expires.")
