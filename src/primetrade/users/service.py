"""Account rules: registration, profile changes, roles and the last-admin guard."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from primetrade.kit.cache import invalidate_after_commit
from primetrade.kit.db import utcnow
from primetrade.kit.pagination import Page
from primetrade.runtime import Runtime
from primetrade.users.exceptions import (
    EmailTaken,
    LastAdmin,
    UserNotFound,
    WeakPassword,
    WrongPassword,
)
from primetrade.users.models import Role, User
from primetrade.users.repository import NEWEST_FIRST, UserRepository
from primetrade.users.schemas import AdminUserUpdate, ProfileUpdate, UserRead

USERS_SCOPE = "users:-created_at"


async def find_by_email(session: AsyncSession, email: str) -> User | None:
    return await UserRepository(session).get_by_email(email.strip().lower())


async def get_active(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """The user if it exists and may sign in."""
    user = await UserRepository(session).get(user_id)
    return user if user is not None and user.is_active else None


def snapshot(user: User) -> dict[str, Any]:
    """The account's public fields as JSON-ready data, for caches (never the password hash)."""
    return UserRead.model_validate(user).model_dump(mode="json")


def from_snapshot(data: dict[str, Any]) -> User:
    """A detached account rebuilt from `snapshot`: to read, never to change or to add."""
    return User(**UserRead.model_validate(data).model_dump())


async def get(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await UserRepository(session).get(user_id)
    if user is None:
        raise UserNotFound()
    return user


async def create(
    session: AsyncSession,
    runtime: Runtime,
    *,
    email: str,
    password: str,
    full_name: str | None = None,
    role: Role = Role.user,
) -> User:
    """Register an account; the email must be free (compared case-insensitively)."""
    # Hash before touching the database, so no pooled connection waits on the hasher.
    password_hash = await runtime.hasher.hash(password)
    repo = UserRepository(session)
    if await repo.get_by_email(email) is not None:
        raise EmailTaken("An account with this email already exists.")
    user = User(email=email, full_name=full_name, password_hash=password_hash, role=role)
    try:
        async with session.begin_nested():
            return await repo.add(user)
    except IntegrityError as exc:
        raise EmailTaken("An account with this email already exists.") from exc


async def set_password_hash(session: AsyncSession, user: User, password_hash: str) -> None:
    user.password_hash = password_hash
    await session.flush()


async def update_profile(
    session: AsyncSession, runtime: Runtime, user: User, changes: ProfileUpdate
) -> User:
    """Change name or email; a new email needs the current password."""
    if changes.full_name is not None:
        user.full_name = changes.full_name
    new_email = changes.email if changes.email != user.email else None
    if new_email is not None:
        await _require_password(runtime, user, changes.current_password)
        if await UserRepository(session).get_by_email(new_email) is not None:
            raise EmailTaken("An account with this email already exists.")
        user.email = new_email
        user.email_verified_at = None  # the stamp proved the old address, not this one
    user.updated_at = utcnow()
    invalidate_after_commit(session, user.id)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise EmailTaken("An account with this email already exists.") from exc
    return user


async def change_password(
    session: AsyncSession, runtime: Runtime, user: User, current: str, new: str
) -> None:
    """Replace the password after checking the current one."""
    await _require_password(runtime, user, current)
    if new.strip().lower() == user.email:
        raise WeakPassword("The password must not be the email address.", field=["new_password"])
    if new == current:
        raise WeakPassword(
            "The new password must differ from the current one.", field=["new_password"]
        )
    user.password_hash = await runtime.hasher.hash(new)
    user.updated_at = utcnow()
    await session.flush()
    invalidate_after_commit(session, user.id)


async def _require_password(runtime: Runtime, user: User, password: str | None) -> None:
    ok, _ = await runtime.hasher.verify(password or "", user.password_hash)
    if not ok:
        raise WrongPassword("The current password is incorrect.", field=["current_password"])


async def search(
    session: AsyncSession,
    runtime: Runtime,
    *,
    q: str | None,
    role: Role | None,
    is_active: bool | None,
    limit: int,
    cursor: str | None,
    include_total: bool,
) -> Page[UserRead]:
    """Accounts matching a search, newest first, one page at a time."""
    repo = UserRepository(session)
    statement = repo.search(q, role, is_active)
    after = runtime.cursors.decode_for(cursor, NEWEST_FIRST, USERS_SCOPE)
    users = list(await repo.page(statement, after=after, limit=limit + 1))
    rows = [(user, NEWEST_FIRST.value_of(user)) for user in users]
    return Page[UserRead](
        items=[UserRead.model_validate(user) for user in users[:limit]],
        next_cursor=runtime.cursors.next_for(rows, USERS_SCOPE, limit),
        total=await repo.count(statement) if include_total else None,
    )


async def admin_update(
    session: AsyncSession, actor: User, user: User, changes: AdminUserUpdate
) -> tuple[User, bool]:
    """Apply an admin's change; (user, whether the user lost access and must be signed out)."""
    losing_admin = (changes.role is not None and changes.role is not Role.admin) or (
        changes.is_active is False
    )
    guarded = user.is_admin and user.is_active and losing_admin
    if guarded:
        await _keep_one_admin(session, user)
    deactivated = changes.is_active is False and user.is_active
    for field, value in changes.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(user, field, value)
    user.updated_at = utcnow()
    await session.flush()
    if guarded:
        await _admin_remains(session)
    invalidate_after_commit(session, user.id)
    return user, deactivated


async def delete(session: AsyncSession, user: User) -> None:
    """Delete an account with everything it owns."""
    guarded = user.is_admin and user.is_active
    if guarded:
        await _keep_one_admin(session, user)
    await UserRepository(session).delete(user)
    if guarded:
        await _admin_remains(session)
    invalidate_after_commit(session, user.id)


async def _keep_one_admin(session: AsyncSession, leaving: User) -> None:
    admins: Sequence[uuid.UUID] = await UserRepository(session).lock_active_admins()
    if not [admin_id for admin_id in admins if admin_id != leaving.id]:
        raise LastAdmin("At least one active admin must remain.")


async def _admin_remains(session: AsyncSession) -> None:
    """Re-check once the change is written, inside the same transaction.

    PostgreSQL's row locks in `_keep_one_admin` serialise two admins removing each other, but
    SQLite ignores FOR UPDATE and reads outside the write transaction, so both could pass that
    check. Counting after the write (which holds SQLite's single writer lock) closes the race;
    raising rolls the change back.
    """
    if await UserRepository(session).count_active_admins() == 0:
        raise LastAdmin("At least one active admin must remain.")
