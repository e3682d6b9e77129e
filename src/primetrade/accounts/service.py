"""Account mail rules: registration, email verification and password reset.

Answers never tell which addresses have accounts: with verification on, registering an
address that is taken looks (and costs: one password hash) exactly like a new one, and reset
and resend requests only write a job whose handler decides, off the request path, whether
anybody gets a message.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from primetrade.accounts.exceptions import InvalidAccountToken
from primetrade.accounts.models import AccountToken, TokenPurpose
from primetrade.accounts.repository import AccountTokenRepository
from primetrade.accounts.schemas import LinkJob
from primetrade.accounts.tokens import hash_secret, secret_for
from primetrade.auth import service as auth_service
from primetrade.auth.schemas import RegisterRequest
from primetrade.jobs import enqueue
from primetrade.kit.db import utcnow
from primetrade.mail import send_email
from primetrade.mail.schemas import MailJob
from primetrade.runtime import Runtime
from primetrade.settings import Settings
from primetrade.users import service as users_service
from primetrade.users.exceptions import EmailTaken, WeakPassword
from primetrade.users.models import User
from primetrade.users.schemas import ProfileUpdate

LINK_JOB = "accounts.send_link"
# At most one link (or registration warning) per address in each window of this length:
# enough to stop an attacker from flooding a mailbox, short enough for a person to retry.
LINK_WINDOW_SECONDS = 300
WARNING_WINDOW_SECONDS = 3600
_PAGES = {TokenPurpose.verify_email: "verify-email", TokenPurpose.password_reset: "reset-password"}
_TEMPLATES = {
    TokenPurpose.verify_email: "verify_email",
    TokenPurpose.password_reset: "password_reset",
}


async def register(session: AsyncSession, runtime: Runtime, body: RegisterRequest) -> User | None:
    """Create an account and its first email; None when verification hides the outcome."""
    if not runtime.settings.email_verification_required:
        user = await _create(session, runtime, body)
        await _welcome(session, user)
        return user
    try:
        user = await _create(session, runtime, body)
    except EmailTaken:
        await _warn_owner(session, body.email)
        return None
    await enqueue(
        session,
        LINK_JOB,
        LinkJob(purpose=TokenPurpose.verify_email, email=user.email).model_dump(mode="json"),
        key=f"link:verify_email:{user.id}",
    )
    return None


async def _create(session: AsyncSession, runtime: Runtime, body: RegisterRequest) -> User:
    return await users_service.create(
        session, runtime, email=body.email, password=body.password, full_name=body.full_name
    )


async def request_link(session: AsyncSession, purpose: TokenPurpose, email: str) -> None:
    """Ask for a verification or reset link; the same work whether the address is known."""
    slot = int(utcnow().timestamp() // LINK_WINDOW_SECONDS)
    payload = LinkJob(purpose=purpose, email=email).model_dump(mode="json")
    await enqueue(session, LINK_JOB, payload, key=f"link:{purpose}:{_address_key(email)}:{slot}")


async def update_profile(
    session: AsyncSession, runtime: Runtime, user: User, changes: ProfileUpdate
) -> User:
    """Change name or email; a new address must be proven again.

    Until it is, sessions already open keep working (refresh does not ask for a verified
    address), so nobody is locked out mid-session and a mistyped address can still be fixed;
    only a new sign-in waits for the link, as after registration.
    """
    old_email = user.email
    user = await users_service.update_profile(session, runtime, user, changes)
    if user.email != old_email:
        # Either kind of link marks the address as proven once redeemed: one still in the
        # old mailbox must not vouch for the new address.
        tokens = AccountTokenRepository(session)
        for purpose in (TokenPurpose.verify_email, TokenPurpose.password_reset):
            await tokens.retire(user.id, purpose, utcnow())
        if runtime.settings.email_verification_required:
            await request_link(session, TokenPurpose.verify_email, user.email)
    return user


async def verify_email(session: AsyncSession, token: str) -> None:
    """Mark the address behind a verification link as proven, and welcome its owner."""
    user = await _redeem(session, TokenPurpose.verify_email, token)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        await session.flush()
        await _welcome(session, user)


async def reset_password(
    session: AsyncSession, runtime: Runtime, token: str, new_password: str
) -> None:
    """Set a new password from a reset link; every session of the account ends."""
    password_hash = await runtime.hasher.hash(new_password)
    user = await _redeem(session, TokenPurpose.password_reset, token)
    if new_password.strip().lower() == user.email:
        raise WeakPassword("The password must not be the email address.", field=["new_password"])
    user.password_hash = password_hash
    # The link arrived at the address: that proves it as well as a verification link would.
    user.email_verified_at = user.email_verified_at or utcnow()
    user.updated_at = utcnow()
    await session.flush()
    await AccountTokenRepository(session).retire(user.id, TokenPurpose.password_reset, utcnow())
    await auth_service.revoke_other_sessions(session, user.id, keep=None)


async def _redeem(session: AsyncSession, purpose: TokenPurpose, token: str) -> User:
    user_id = await AccountTokenRepository(session).consume(purpose, hash_secret(token), utcnow())
    user = None if user_id is None else await users_service.get_active(session, user_id)
    if user is None:
        raise InvalidAccountToken("The link is invalid, has expired or was used already.")
    return user


async def _welcome(session: AsyncSession, user: User) -> None:
    await send_email(
        session,
        to=user.email,
        template="welcome",
        context={"name": user.full_name, "email": user.email},
        user_id=user.id,
        key=f"welcome:{user.id}",
    )


async def _warn_owner(session: AsyncSession, email: str) -> None:
    owner = await users_service.find_by_email(session, email)
    if owner is None:  # a registration racing ours won; nobody to warn yet
        return
    slot = int(utcnow().timestamp() // WARNING_WINDOW_SECONDS)
    await send_email(
        session,
        to=owner.email,
        template="registration_attempt",
        context={"email": owner.email, "reset_path": "/reset-password"},
        user_id=owner.id,
        key=f"registration-attempt:{owner.id}:{slot}",
    )


def _address_key(email: str) -> str:
    # Outbox keys are visible to operators; the address itself need not be.
    return hashlib.sha256(email.encode()).hexdigest()[:32]


# --- For the link job ----------------------------------------------------------------------


async def prepare_link(
    session: AsyncSession, settings: Settings, job: LinkJob, token_id: uuid.UUID
) -> dict[str, Any] | None:
    """The `mail.send` payload of a link for `job`, or None when nobody may get one.

    `token_id` is stable for one job, so a retried job reuses its token (and its link).
    """
    user = await users_service.find_by_email(session, job.email)
    if user is None or not user.is_active:
        return None
    if job.purpose is TokenPurpose.verify_email and (
        user.email_verified_at is not None or not settings.email_verification_required
    ):
        return None
    repo = AccountTokenRepository(session)
    token = await repo.get(token_id)
    if token is None:
        token = await repo.add(_new_token(settings, job.purpose, user, token_id))
    secret = secret_for(token.id, settings.secret_key)
    page = _PAGES[job.purpose]
    context = {
        "name": user.full_name,
        "email": user.email,
        "link": f"{settings.public_url.rstrip('/')}/{page}?token={secret}",
        "token": secret,
        "valid_minutes": int((token.expires_at - token.created_at).total_seconds() // 60),
    }
    mail = MailJob(
        to=user.email, template=_TEMPLATES[job.purpose], context=context, user_id=user.id
    )
    return mail.model_dump(mode="json")


def _new_token(
    settings: Settings, purpose: TokenPurpose, user: User, token_id: uuid.UUID
) -> AccountToken:
    ttl = (
        settings.email_verification_ttl_seconds
        if purpose is TokenPurpose.verify_email
        else settings.password_reset_ttl_seconds
    )
    now = utcnow()
    secret = secret_for(token_id, settings.secret_key)
    return AccountToken(
        id=token_id,
        purpose=purpose,
        token_hash=hash_secret(secret),
        user_id=user.id,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl),
    )
