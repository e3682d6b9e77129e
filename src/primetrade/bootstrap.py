"""Start-up chores run from the CLI: the first admin and the demo data."""

from __future__ import annotations

import random
from datetime import timedelta
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError

from primetrade.kit.cache import invalidate_after_commit
from primetrade.kit.db import session_scope, utcnow
from primetrade.runtime import Runtime
from primetrade.settings import Settings
from primetrade.tasks import service as tasks_service
from primetrade.tasks.models import TaskPriority, TaskStatus
from primetrade.tasks.schemas import TaskCreate
from primetrade.users import service as users_service
from primetrade.users.models import Role
from primetrade.users.schemas import Email, Password


def _validated(email: str, password: str) -> tuple[str, str]:
    try:
        return TypeAdapter(Email).validate_python(email), TypeAdapter(Password).validate_python(
            password
        )
    except ValidationError as exc:
        raise ValueError("; ".join(e["msg"] for e in exc.errors())) from exc


async def ensure_admin(
    settings: Settings, email: str, password: str, full_name: str | None
) -> bool:
    """Create the admin, or promote and re-password an existing account. True if created."""
    email, password = _validated(email, password)
    runtime = Runtime.build(settings)
    created = False
    try:
        async with session_scope(runtime.sessions) as session:
            user = await users_service.find_by_email(session, email)
            if user is None:
                await users_service.create(
                    session,
                    runtime,
                    email=email,
                    password=password,
                    full_name=full_name,
                    role=Role.admin,
                )
                created = True
            else:
                user.role, user.is_active = Role.admin, True
                user.password_hash = await runtime.hasher.hash(password)
                invalidate_after_commit(session, user.id)
        return created
    finally:
        await runtime.close()


_DEMO = [
    (
        "Prepare quarterly report",
        "Collect figures from finance and draft the summary.",
        ["work", "finance"],
    ),
    ("Book dentist appointment", "Morning slot if possible.", ["health"]),
    ("Review pull request for search", "Check ranking on both engines.", ["work", "code-review"]),
    ("Plan team offsite", "Venue, agenda and travel for 12 people.", ["work", "team"]),
    ("Renew passport", "Photos, form, and the fee.", ["admin"]),
    ("Write blog post about keyset pagination", "Why OFFSET hurts on page 500.", ["writing"]),
    ("Grocery shopping", "Milk, eggs, coffee beans, spinach.", ["home"]),
    ("Fix flaky login test", "Happens under load only.", ["work", "bug"]),
    ("Call the bank about the mortgage", "Ask about fixed-rate options.", ["finance", "home"]),
    ("Update onboarding docs", "New laptop setup and access requests.", ["work", "docs"]),
]


async def seed_demo(settings: Settings, email: str, password: str, count: int) -> int:
    """A demo user with `count` more varied tasks; returns how many tasks the user then has.

    Run again for the same email, it re-passwords the account, so the printed sign-in works.
    """
    email, password = _validated(email, password)
    runtime = Runtime.build(settings)
    rng = random.Random(7)  # noqa: S311 - demo data, not security
    try:
        async with session_scope(runtime.sessions) as session:
            user = await users_service.find_by_email(session, email)
            if user is None:
                user = await users_service.create(
                    session, runtime, email=email, password=password, full_name="Demo User"
                )
            else:
                password_hash = await runtime.hasher.hash(password)
                await users_service.set_password_hash(session, user, password_hash)
            for i in range(count):
                title, description, tags = _DEMO[i % len(_DEMO)]
                due = utcnow() + timedelta(days=rng.randint(-10, 30), hours=rng.randint(0, 23))
                await tasks_service.create(
                    session,
                    user,
                    TaskCreate(
                        title=title if i < len(_DEMO) else f"{title} #{i // len(_DEMO) + 1}",
                        description=description,
                        status=rng.choice(list(TaskStatus)),
                        priority=rng.choice(list(TaskPriority)),
                        due_at=due if rng.random() < 0.8 else None,
                        tags=tags,
                    ),
                )
            return (await tasks_service.stats(session, user, ZoneInfo("UTC"))).total
    finally:
        await runtime.close()
