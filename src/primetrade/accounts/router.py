"""Email verification and password reset: public endpoints, answered alike for any address."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from primetrade.accounts import service
from primetrade.accounts.models import TokenPurpose
from primetrade.accounts.schemas import Accepted, EmailOnly, PasswordResetConfirm, VerifyEmail
from primetrade.kit.errors import problem_responses
from primetrade.runtime import RuntimeDep, SessionDep

router = APIRouter(prefix="/auth", tags=["auth"], responses=problem_responses(422, 429))


@router.post(
    "/verify-email", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(400)
)
async def verify_email(body: VerifyEmail, session: SessionDep) -> Response:
    """Prove your email address with the token from the verification email."""
    await service.verify_email(session, body.token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/verify-email/resend", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
async def resend_verification(body: EmailOnly, session: SessionDep) -> Accepted:
    """Send the verification email again (the answer is the same for every address)."""
    await service.request_link(session, TokenPurpose.verify_email, body.email)
    return Accepted()


@router.post("/password-reset", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
async def request_password_reset(body: EmailOnly, session: SessionDep) -> Accepted:
    """Email a password reset link (the answer is the same for every address)."""
    await service.request_link(session, TokenPurpose.password_reset, body.email)
    return Accepted()


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(400),
)
async def confirm_password_reset(
    body: PasswordResetConfirm, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Set a new password with the token from the reset email; every session ends."""
    await service.reset_password(session, runtime, body.token, body.new_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
