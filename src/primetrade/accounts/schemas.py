"""The account mail API contract, and the payload of the link-sending job."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from primetrade.accounts.models import TokenPurpose
from primetrade.users.schemas import Email, Input, Password

ACCEPTED_DETAIL = "If the address can receive mail from us, a message explains what comes next."
Token = Annotated[str, Field(min_length=16, max_length=128)]


class Accepted(BaseModel):
    """The one answer that tells nothing about which addresses have accounts."""

    status: Literal["accepted"] = "accepted"
    detail: str = ACCEPTED_DETAIL


class EmailOnly(Input):
    email: Email


class VerifyEmail(Input):
    token: Token


class PasswordResetConfirm(Input):
    token: Token
    new_password: Password


class LinkJob(BaseModel):
    """Send a verification or reset link to whoever owns `email`, if anybody may get one."""

    purpose: TokenPurpose
    email: str = Field(max_length=320)
