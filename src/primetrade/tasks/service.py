"""Task rules: who sees what, status bookkeeping, optimistic concurrency, lists and stats."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from primetrade.kit.cache import Entry, invalidate_after_commit
from primetrade.kit.conditional import etag
from primetrade.kit.db import after_commit, utcnow
from primetrade.kit.pagination import Page
from primetrade.runtime import Runtime
from primetrade.tasks.exceptions import (
    AlreadyArchived,
    NotArchived,
    TaskChanged,
    TaskNotFound,
    VersionMismatch,
)
from primetrade.tasks.models import Task, TaskPriority, TaskStatus
from primetrade.tasks.repository import TaskRepository, sort_key
from primetrade.tasks.schemas import (
    AdminTaskRead,
    TaskCreate,
    TaskQuery,
    TaskRead,
    TaskStats,
    TaskUpdate,
)
from primetrade.users.models import User

TASKS_CREATED = Counter("tasks_created_total", "Tasks created (counted after commit).")


def scope_for(user: User, *, as_admin: bool = False) -> uuid.UUID | None:
    """The one permission rule: a user sees their own tasks; an admin, asking as admin, all."""
    return None if as_admin and user.is_admin else user.id


async def get_visible(
    session: AsyncSession,
    user: User,
    task_id: uuid.UUID,
    *,
    as_admin: bool = False,
    for_update: bool = False,
) -> Task:
    """A task the user may see; anything else, including another user's task, is a 404.

    `for_update` locks it for a change: concurrent writers without `If-Match` then apply one
    after the other (last write wins) instead of failing on each other's version bump.
    """
    scope = scope_for(user, as_admin=as_admin)
    task = await TaskRepository(session).get(scope, task_id, for_update=for_update)
    if task is None:
        raise TaskNotFound()
    return task


async def create(session: AsyncSession, owner: User, data: TaskCreate) -> Task:
    """Create a task owned by `owner`."""
    task = await TaskRepository(session).add(_new_task(owner, data, utcnow()))
    after_commit(session, TASKS_CREATED.inc)
    invalidate_after_commit(session, owner.id)
    return task


async def create_many(session: AsyncSession, owner: User, rows: list[TaskCreate]) -> list[Task]:
    """Create many tasks at once (one flush, one cache invalidation)."""
    now = utcnow()
    tasks = await TaskRepository(session).add_all([_new_task(owner, row, now) for row in rows])
    after_commit(session, lambda: TASKS_CREATED.inc(len(tasks)))
    invalidate_after_commit(session, owner.id)
    return tasks


def _new_task(owner: User, data: TaskCreate, now: datetime) -> Task:
    return Task(
        owner_id=owner.id,
        title=data.title,
        title_key=data.title.casefold(),
        description=data.description,
        status=data.status,
        priority=data.priority,
        due_at=data.due_at,
        tags=data.tags,
        created_at=now,
        updated_at=now,
        completed_at=now if data.status is TaskStatus.done else None,
    )


async def update(
    session: AsyncSession, task: Task, changes: TaskUpdate, *, expected: frozenset[int] | None
) -> Task:
    """Apply a partial change; with `expected` versions, only if the task is at one of them."""
    _check_version(task, expected)
    values = {k: v for k, v in changes.changes().items() if getattr(task, k) != v}
    if not values:
        return task
    now = utcnow()
    if "status" in values:
        task.completed_at = now if values["status"] is TaskStatus.done else None
    if "title" in values:
        task.title_key = values["title"].casefold()
    for field, value in values.items():
        setattr(task, field, value)
    task.updated_at = now
    try:
        await session.flush()
    except StaleDataError as exc:
        raise TaskChanged() from exc
    invalidate_after_commit(session, task.owner_id)
    return task


async def delete(session: AsyncSession, task: Task, *, expected: frozenset[int] | None) -> None:
    """Delete a task; with `expected` versions, only if the task is at one of them."""
    _check_version(task, expected)
    if not await TaskRepository(session).delete(task, expected_version=task.version):
        raise TaskChanged()
    invalidate_after_commit(session, task.owner_id)


async def archive(session: AsyncSession, task: Task, *, expected: frozenset[int] | None) -> Task:
    """Move a task out of the default lists and the stats."""
    if task.archived_at is not None:
        raise AlreadyArchived()
    return await _set_archived(session, task, utcnow(), expected)


async def restore(session: AsyncSession, task: Task, *, expected: frozenset[int] | None) -> Task:
    """Bring an archived task back into the default lists."""
    if task.archived_at is None:
        raise NotArchived()
    return await _set_archived(session, task, None, expected)


async def _set_archived(
    session: AsyncSession, task: Task, when: datetime | None, expected: frozenset[int] | None
) -> Task:
    _check_version(task, expected)
    task.archived_at = when
    task.updated_at = utcnow()
    try:
        await session.flush()
    except StaleDataError as exc:
        raise TaskChanged() from exc
    invalidate_after_commit(session, task.owner_id)
    return task


async def archive_completed(
    session: AsyncSession, completed_before: datetime, *, limit: int
) -> int:
    """Archive up to `limit` tasks completed before `completed_before`; how many."""
    owners = await TaskRepository(session).archive_completed(
        completed_before, utcnow(), limit=limit
    )
    for owner in set(owners):
        invalidate_after_commit(session, owner)
    return len(owners)


def _check_version(task: Task, expected: frozenset[int] | None) -> None:
    if expected is not None and task.version not in expected:
        raise VersionMismatch(f"The task is now at version {task.version}; reload it.")


async def list_tasks(
    session: AsyncSession, runtime: Runtime, user: User, query: TaskQuery, *, as_admin: bool = False
) -> Page[TaskRead]:
    """One page of the tasks the user may see, filtered, searched and sorted."""
    repo = TaskRepository(session)
    statement = repo.filtered(scope_for(user, as_admin=as_admin), query, utcnow())
    if query.search_words:
        statement = repo.searched(statement, query.search_words)
    key = sort_key(query.effective_sort)
    scope = _cursor_scope(query)
    after = runtime.cursors.decode_for(query.cursor, key, scope)
    rows = await repo.page(statement, key, after=after, limit=query.limit)
    schema = _read_schema(as_admin)
    return Page[TaskRead](
        items=[schema.model_validate(task) for task, _ in rows[: query.limit]],
        next_cursor=runtime.cursors.next_for(rows, scope, query.limit),
        total=await repo.count(statement) if query.include_total else None,
    )


def _read_schema(as_admin: bool) -> type[TaskRead]:
    return AdminTaskRead if as_admin else TaskRead


def _cursor_scope(query: TaskQuery) -> str:
    # A cursor is only valid for the order (and search) it was made for.
    return f"tasks:{query.effective_sort.value}:{' '.join(query.search_words)}"


async def stats(session: AsyncSession, user: User, tz: ZoneInfo) -> TaskStats:
    """Counts that summarise the user's tasks."""
    now = utcnow()
    start = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    today = (start, start + timedelta(days=1))
    counts = await TaskRepository(session).stats(user.id, now, today, now - timedelta(days=7))
    return TaskStats(
        total=counts["total"],
        by_status={s: counts[f"status:{s.value}"] for s in TaskStatus},
        by_priority={p: counts[f"priority:{p.value}"] for p in TaskPriority},
        overdue=counts["overdue"],
        due_today=counts["due_today"],
        completed_last_7_days=counts["completed_last_7_days"],
    )


# --- The caller's own reads, through the cache ---------------------------------------------
# Keys are scoped to `user.id`, the authenticated caller; every write above invalidates its
# owner's entries after commit. Answers that depend on the clock (`overdue`, stats) may lag by
# up to their TTL.


async def read_one(
    session: AsyncSession, runtime: Runtime, user: User, task_id: uuid.UUID
) -> Entry:
    """One of the user's tasks as a response body with its ETag."""

    async def compute() -> bytes:
        task = await get_visible(session, user, task_id)
        read = TaskRead.model_validate(task)
        return Entry(etag(task.version), read.__pydantic_serializer__.to_json(read)).pack()

    ttl = runtime.settings.cache_ttl_task_seconds
    return Entry.unpack(
        await runtime.cached(session, "task", user.id, (str(task_id),), ttl, compute)
    )


LIST_CACHE = "task_list"


def list_entry(query_key: str) -> tuple[str, tuple[str, ...]]:
    """The cache name and parts of a page of the caller's list (see `query_key`)."""
    return LIST_CACHE, (query_key,)


async def list_page(
    session: AsyncSession, runtime: Runtime, user: User, query: TaskQuery, key: str
) -> Entry:
    """One page of the user's tasks as a response body with a (weak) ETag of its content.

    `key` is `query_key(query)`, which the caller has at hand already.
    """

    async def compute() -> bytes:
        page = await list_tasks(session, runtime, user, query)
        body = page.__pydantic_serializer__.to_json(page)
        # A hash of the content: a page rebuilt unchanged after a TTL keeps its tag.
        return Entry(f'W/"{hashlib.sha256(body).hexdigest()[:27]}"', body).pack()

    ttl = runtime.settings.cache_ttl_task_list_seconds
    name, parts = list_entry(key)
    return Entry.unpack(await runtime.cached(session, name, user.id, parts, ttl, compute))


def query_key(query: TaskQuery) -> str:
    """The query normalised (order of repeated filters, effective sort, search words), hashed."""
    data = query.model_dump(mode="json")
    for name in ("status", "priority", "tag"):
        data[name] = sorted(data[name])
    data["sort"] = query.effective_sort.value
    data["q"] = " ".join(query.search_words)
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


async def stats_body(session: AsyncSession, runtime: Runtime, user: User, tz: ZoneInfo) -> bytes:
    """`stats` as a JSON body, cached per user and time zone."""

    async def compute() -> bytes:
        result = await stats(session, user, tz)
        return result.__pydantic_serializer__.to_json(result)

    ttl = runtime.settings.cache_ttl_stats_seconds
    return await runtime.cached(session, "stats", user.id, (tz.key,), ttl, compute)
