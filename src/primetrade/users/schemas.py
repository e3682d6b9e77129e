"""The users API contract."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StringConstraints,
)

from primetrade.users.models import Role

FullName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def check_password_strength(password: str) -> str:
    """8–128 characters mixing at least two of: lower case, upper case, digits, symbols."""
    classes = (str.islower, str.isupper, str.isdigit)
    kinds = {i for ch in password for i, test in enumerate(classes) if test(ch)}
    if any(not ch.isalnum() for ch in password):
        kinds.add(3)
    if len(kinds) < 2:
        raise ValueError("use at least two kinds of characters: lower, upper, digits, symbols")
    return password


Password = Annotated[
    str, Field(min_length=8, max_length=128), AfterValidator(check_password_strength)
]


def normalise_email(email: str) -> str:
    return email.strip().lower()


Email = Annotated[EmailStr, Field(max_length=320), AfterValidator(normalise_email)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str | None
    role: Role
    is_active: bool
    created_at: datetime
    updated_at: datetime


class ProfileUpdate(Input):
    """Change your name, or your email (which needs your current password)."""

    full_name: FullName | None = None
    email: Email | None = None
    current_password: str | None = Field(None, max_length=128)


class PasswordChange(Input):
    current_password: str = Field(max_length=128)
    new_password: Password


class AdminUserUpdate(Input):
    """What an admin may change on an account."""

    role: Role | None = None
    is_active: StrictBool | None = None
    full_name: FullName | None = None
