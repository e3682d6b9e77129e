"""Sign-in rules: credentials, token pairs, rotation with reuse detection, revocation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from primetrade.accounts.exceptions import EmailNotVerified
from primetrade.auth.models import AuthSession
from primetrade.auth.repository import AuthRepository
from primetrade.auth.schemas import TokenPair
from primetrade.auth.tokens import (
    LEEWAY_SECONDS,
    AccessClaims,
    InvalidToken,
    hash_refresh_token,
    new_refresh_token,
)
from primetrade.kit.cache import invalidate_after_commit
from primetrade.kit.db import utcnow
from primetrade.kit.errors import TooManyRequests, Unauthorized
from primetrade.kit.logging import get_logger
from primetrade.kit.revocations import RevocationsUnavailable
from primetrade.runtime import Runtime
from primetrade.users import service as users_service
from primetrade.users.models import User

log = get_logger(__name__)
BAD_CREDENTIALS = "The email or password is incorrect."


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in caller: the user row as of this request and the token that proved it."""

    user: User
    claims: AccessClaims


async def login(
    session: AsyncSession,
    runtime: Runtime,
    *,
    email: str,
    password: str,
    client: str,
    user_agent: str | None,
) -> TokenPair:
    """Check credentials and open a session; every failure looks and costs the same."""
    email = email.strip().lower()
    throttle_key = f"{client}|{email}"
    decision = await runtime.limiter.check("login_failures", throttle_key)
    if not decision.allowed:
        raise TooManyRequests(
            "Too many failed sign-ins; wait before trying again.",
            headers={name.decode(): value.decode() for name, value in decision.headers()},
        )
    user = await users_service.find_by_email(session, email)
    # Hand the connection back before the slow hash, so a burst of sign-ins cannot hold the
    # pool while queueing for the hasher (nothing is written yet: ending the read loses nothing).
    await session.commit()
    ok, new_hash = await runtime.hasher.verify(password, user.password_hash if user else None)
    if user is None or not ok or not user.is_active:
        await runtime.limiter.hit("login_failures", throttle_key)
        log.info("login_failed", reason="credentials" if not ok else "inactive")
        raise Unauthorized(BAD_CREDENTIALS, error="invalid_grant")
    if runtime.settings.email_verification_required and user.email_verified_at is None:
        # Said only to whoever knows the password: a wrong one gets the 401 above, so this
        # answer reveals nothing about the address to anybody else.
        log.info("login_refused", reason="email_not_verified")
        raise EmailNotVerified("Verify your email address first; the link is in your mail.")
    if new_hash is not None:
        await users_service.set_password_hash(session, user, new_hash)
    return await _open_session(session, runtime, user, user_agent)


async def _open_session(
    session: AsyncSession, runtime: Runtime, user: User, user_agent: str | None
) -> TokenPair:
    now = utcnow()
    auth_session = AuthSession(
        user_id=user.id,
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(seconds=runtime.settings.refresh_token_ttl_seconds),
        user_agent=(user_agent or "")[:300] or None,
    )
    refresh, refresh_hash = new_refresh_token()
    await AuthRepository(session).add_session(auth_session, refresh_hash)
    return _pair(runtime, user.id, auth_session.id, refresh)


def _pair(runtime: Runtime, user_id: uuid.UUID, session_id: uuid.UUID, refresh: str) -> TokenPair:
    return TokenPair(
        access_token=runtime.tokens.issue_access(user_id, session_id),
        refresh_token=refresh,
        expires_in=int(runtime.tokens.access_ttl.total_seconds()),
    )


async def refresh(session: AsyncSession, runtime: Runtime, token: str) -> TokenPair:
    """Rotate a refresh token; presenting a rotated one revokes its whole family."""
    repo = AuthRepository(session)
    found = await repo.find_token(hash_refresh_token(token))
    if found is None:
        raise Unauthorized("The refresh token is not valid.", error="invalid_grant")
    stored, auth_session = found
    now = utcnow()
    if stored.used_at is not None or not await repo.mark_used(stored.token_hash):
        await repo.revoke_session(auth_session.id, now)
        log.warning("refresh_token_reused", session_id=str(auth_session.id))
        # The revocation must survive the 401 below, so it is committed on its own (and the
        # cached session dropped here: after-commit work is discarded with the error).
        await session.commit()
        await runtime.forget(auth_session.user_id)
        raise Unauthorized("The refresh token was already used.", error="invalid_grant")
    idle_limit = auth_session.last_used_at + timedelta(
        seconds=runtime.settings.refresh_token_idle_seconds
    )
    if auth_session.revoked_at is not None or auth_session.expires_at <= now or idle_limit <= now:
        raise Unauthorized("The session has ended; sign in again.", error="invalid_grant")
    user = await users_service.get_active(session, auth_session.user_id)
    if user is None:
        raise Unauthorized("The account is not active.", error="invalid_grant")
    new_token, new_hash = new_refresh_token()
    await repo.add_token(auth_session.id, new_hash)
    await repo.touch(auth_session, now)
    return _pair(runtime, user.id, auth_session.id, new_token)


async def logout(
    session: AsyncSession, runtime: Runtime, principal: Principal, refresh_token: str
) -> None:
    """End the caller's session: its refresh family and the access token presented."""
    repo = AuthRepository(session)
    found = await repo.find_token(hash_refresh_token(refresh_token))
    if found is None or found[1].user_id != principal.user.id:
        raise Unauthorized("The refresh token is not valid.", error="invalid_grant")
    now = utcnow()
    await repo.revoke_session(found[1].id, now)
    if found[1].id != principal.claims.session_id:
        await repo.revoke_session(principal.claims.session_id, now)
    invalidate_after_commit(session, principal.user.id)
    # Deny the token for as long as decoding would still accept it (its expiry plus leeway).
    ttl = int((principal.claims.expires_at - now).total_seconds()) + LEEWAY_SECONDS + 1
    await runtime.revocations.revoke(principal.claims.jti, ttl)


async def end_session(
    session: AsyncSession,
    runtime: Runtime,
    *,
    refresh_token: str | None,
    access_token: str | None,
) -> None:
    """Sign out with whatever the caller still holds; tokens that prove nothing are ignored.

    For the browser, whose access token may have expired already: the refresh token ends its
    session, and a still-valid access token is denied too (and its session ended).
    """
    repo = AuthRepository(session)
    now = utcnow()
    ended: set[uuid.UUID] = set()
    if refresh_token:
        found = await repo.find_token(hash_refresh_token(refresh_token))
        if found is not None:
            await repo.revoke_session(found[1].id, now)
            invalidate_after_commit(session, found[1].user_id)
            ended.add(found[1].id)
    if access_token:
        try:
            claims = runtime.tokens.decode_access(access_token)
        except InvalidToken:
            return
        if claims.session_id not in ended:
            await repo.revoke_session(claims.session_id, now)
        invalidate_after_commit(session, claims.user_id)
        ttl = int((claims.expires_at - now).total_seconds()) + LEEWAY_SECONDS + 1
        await runtime.revocations.revoke(claims.jti, ttl)


async def revoke_other_sessions(
    session: AsyncSession, user_id: uuid.UUID, *, keep: uuid.UUID | None
) -> None:
    """Sign the user out everywhere except the session `keep` (None: everywhere)."""
    await AuthRepository(session).revoke_user_sessions(user_id, utcnow(), keep=keep)
    invalidate_after_commit(session, user_id)


async def authenticate(
    session: AsyncSession, runtime: Runtime, token: str, *, cacheable: bool = False
) -> Principal:
    """The caller behind an access token, checked against the user row and its session.

    With `cacheable` (requests that only read) that check may come from the cache, keyed by
    the token's signed user and session ids. Everything that must end access at once (logout,
    refresh-token reuse, password change, role change, deactivation, deletion) invalidates
    the user's entries after it commits. Writes always check the database and get a user row
    they may change.
    """
    try:
        claims = runtime.tokens.decode_access(token)
    except InvalidToken as exc:
        raise Unauthorized("The access token is invalid or expired.") from exc
    try:
        if await runtime.revocations.is_revoked(claims.jti):
            raise Unauthorized("The access token has been revoked.")
    except RevocationsUnavailable:
        # The denylist is defence in depth: the logout that filled it also revoked the session
        # row, so with the denylist unknown the request checks that row in the database (not
        # in the cache, whose entry could predate a lost invalidation) and carries on.
        cacheable = False
    if not cacheable:
        user, _ = await _live_session(session, claims)
        return Principal(user=user, claims=claims)
    return await _cached_principal(session, runtime, claims)


async def _live_session(session: AsyncSession, claims: AccessClaims) -> tuple[User, datetime]:
    found = await AuthRepository(session).live_session(claims.session_id, claims.user_id)
    if found is None:
        raise Unauthorized("The account is inactive or the session has ended; sign in again.")
    return found


PRINCIPAL_CACHE = "principal"


def principal_entry(claims: AccessClaims) -> tuple[str, tuple[str, ...]]:
    """The cache name and parts under which the caller behind `claims` is remembered."""
    return PRINCIPAL_CACHE, (str(claims.session_id),)


def cached_user(value: bytes, claims: AccessClaims) -> dict[str, Any] | None:
    """The user snapshot a principal entry holds, or None when it no longer lets `claims` in.

    The entry may outlive the session's absolute end; the database would refuse it by then.
    """
    data = orjson.loads(value)
    user: dict[str, Any] = data["user"]
    if user["id"] != str(claims.user_id) or datetime.fromisoformat(data["ends"]) <= utcnow():
        return None
    return user


async def _cached_principal(
    session: AsyncSession, runtime: Runtime, claims: AccessClaims
) -> Principal:
    async def compute() -> bytes:
        user, ends = await _live_session(session, claims)
        return orjson.dumps({"user": users_service.snapshot(user), "ends": ends.isoformat()})

    ttl = runtime.settings.cache_ttl_profile_seconds
    name, parts = principal_entry(claims)
    value = await runtime.cached(session, name, claims.user_id, parts, ttl, compute)
    snapshot = cached_user(value, claims)
    if snapshot is None:
        raise Unauthorized("The account is inactive or the session has ended; sign in again.")
    return Principal(user=users_service.from_snapshot(snapshot), claims=claims)
