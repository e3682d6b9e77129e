"""All SQL about tasks. Every read starts from `visible()`, so no query can forget its scope."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    and_,
    case,
    column,
    delete,
    exists,
    func,
    literal,
    literal_column,
    select,
    table,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from primetrade.kit.pagination import SortKey, load_datetime
from primetrade.tasks.models import Task, TaskPriority, TaskStatus
from primetrade.tasks.schemas import TaskQuery, TaskSort

# SQLite full-text index (made by the migrations): an FTS5 table whose rowid is the rowid of
# a small map table, so updates and deletes find their index row by a primary key.
_FTS = table("tasks_fts", column("rowid"), column("title"), column("description"))
_FTS_MAP = table("tasks_fts_map", column("rowid"), column("task_id"))
_SCORE = "score"
_TASK_COLUMNS = tuple(Task.__table__.columns)


def _priority(value: Any) -> Any:
    return TaskPriority(value)


SORT_KEYS: dict[str, SortKey] = {
    "created_at": SortKey("created_at", Task.created_at, load=load_datetime),  # type: ignore[arg-type]
    "updated_at": SortKey("updated_at", Task.updated_at, load=load_datetime),  # type: ignore[arg-type]
    "due_at": SortKey("due_at", Task.due_at, nullable=True, load=load_datetime),  # type: ignore[arg-type]
    "priority": SortKey("priority", Task.priority, load=_priority),  # type: ignore[arg-type]
    "title": SortKey("title_key", Task.title_key),  # type: ignore[arg-type]
}


def sort_key(sort: TaskSort) -> SortKey:
    name = sort.value.lstrip("-")
    if name == TaskSort.relevance.value:
        return SortKey(_SCORE, literal_column(_SCORE), descending=True, load=int)
    return SORT_KEYS[name].with_direction(sort.value.startswith("-"))


class TaskRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = session.bind.dialect.name if session.bind else "sqlite"

    @staticmethod
    def visible(owner_id: uuid.UUID | None) -> Select[Any]:
        """Tasks this scope may see: one owner's, or everyone's (admin scope is None)."""
        statement = select(Task)
        return statement if owner_id is None else statement.where(Task.owner_id == owner_id)

    async def get(
        self, owner_id: uuid.UUID | None, task_id: uuid.UUID, *, for_update: bool = False
    ) -> Task | None:
        """One visible task; `for_update` row-locks it (PostgreSQL) until the request commits."""
        statement = self.visible(owner_id).where(Task.id == task_id)
        if for_update:
            statement = statement.with_for_update()
        task: Task | None = await self.session.scalar(statement)
        return task

    async def add(self, task: Task) -> Task:
        self.session.add(task)
        await self.session.flush()
        return task

    async def add_all(self, tasks: list[Task]) -> list[Task]:
        self.session.add_all(tasks)
        await self.session.flush()
        return tasks

    async def archive_completed(
        self, completed_before: datetime, now: datetime, *, limit: int
    ) -> list[uuid.UUID]:
        """Archive up to `limit` tasks done before `completed_before`; their owners' ids.

        One bulk UPDATE with the version bumped by hand (the ORM's version counter only
        watches unit-of-work flushes), so ETags and `If-Match` see the change.
        """
        chosen = (
            select(Task.id)
            .where(
                Task.archived_at.is_(None),
                Task.status == TaskStatus.done,
                Task.completed_at < completed_before,
            )
            .limit(limit)
        )
        ids = list((await self.session.scalars(chosen)).all())
        if not ids:
            return []
        statement = (
            update(Task)
            .where(Task.id.in_(ids), Task.archived_at.is_(None))
            .values(archived_at=now, updated_at=now, version=Task.version + 1)
            .returning(Task.owner_id)
            .execution_options(synchronize_session=False)
        )
        return list((await self.session.scalars(statement)).all())

    async def delete(self, task: Task, *, expected_version: int | None) -> bool:
        statement = delete(Task).where(Task.owner_id == task.owner_id, Task.id == task.id)
        if expected_version is not None:
            statement = statement.where(Task.version == expected_version)
        result = await self.session.execute(statement)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def filtered(self, owner_id: uuid.UUID | None, query: TaskQuery, now: datetime) -> Select[Any]:
        """The scope narrowed by every filter of `query` (search not included)."""
        statement = self.visible(owner_id).where(
            Task.archived_at.is_not(None) if query.archived else Task.archived_at.is_(None)
        )
        owner_filter = getattr(query, "owner_id", None)
        if owner_filter is not None:
            statement = statement.where(Task.owner_id == owner_filter)
        if query.status:
            statement = statement.where(Task.status.in_(query.status))
        if query.priority:
            statement = statement.where(Task.priority.in_(query.priority))
        for tag in query.tag:
            statement = statement.where(self._has_tag(tag))
        if query.due_before is not None:
            statement = statement.where(Task.due_at < query.due_before)
        if query.due_after is not None:
            statement = statement.where(Task.due_at >= query.due_after)
        if query.overdue is not None:
            statement = statement.where(_overdue(now) if query.overdue else ~_overdue(now))
        return statement

    def _has_tag(self, tag: str) -> ColumnElement[bool]:
        if self.dialect == "postgresql":
            # The column is JSONB here (the GIN index answers `@>`); the model's type is the
            # portable JSON, which has no containment operator of its own.
            return type_coerce(Task.tags, JSONB).contains([tag])
        each = func.json_each(Task.tags).table_valued("value").alias("tag_values")
        return exists(select(literal(1)).select_from(each).where(each.c.value == tag))

    def searched(self, statement: Select[Any], words: list[str]) -> Select[Any]:
        """Keep rows matching every word (as a prefix) and add their relevance as `score`.

        Relevance is the same small integer on every engine, so a fixed data set ranks
        identically on SQLite and PostgreSQL: for each word, 2 when it starts a word of the
        title and 1 when it starts a word of the description. Title matches therefore rank
        above description-only matches; equal scores fall back to the id (newest first).
        Engine scores (bm25, ts_rank) are not used: they differ between engines, and bm25's
        statistics cover every user's tasks.
        """
        title_hits: list[ColumnElement[bool]]
        description_hits: list[ColumnElement[bool]]
        if self.dialect == "postgresql":
            vector: ColumnElement[Any] = literal_column("tasks.search_vector")

            def matches(query: str) -> ColumnElement[bool]:
                return vector.op("@@")(func.to_tsquery("simple", query))

            # Title lexemes carry weight A, description lexemes weight B (see the migration).
            statement = statement.where(matches(" & ".join(f"{word}:*" for word in words)))
            title_hits = [matches(f"{word}:*A") for word in words]
            description_hits = [matches(f"{word}:*B") for word in words]
        else:
            fts: ColumnElement[Any] = literal_column("tasks_fts")

            def in_column(name: str, word: str) -> ColumnElement[bool]:
                hits = select(_FTS.c.rowid).where(fts.op("MATCH")(f'{name} : "{word}"*'))
                return _FTS_MAP.c.rowid.in_(hits.correlate(None))

            statement = (
                statement.join(_FTS_MAP, _FTS_MAP.c.task_id == Task.id)
                .join(_FTS, _FTS.c.rowid == _FTS_MAP.c.rowid)
                .where(fts.op("MATCH")(" AND ".join(f'"{word}"*' for word in words)))
            )
            title_hits = [in_column("title", word) for word in words]
            description_hits = [in_column("description", word) for word in words]
        points = [case((hit, 2), else_=0) for hit in title_hits]
        points += [case((hit, 1), else_=0) for hit in description_hits]
        score = sum(points[1:], points[0])
        return statement.add_columns(type_coerce(score, Integer).label(_SCORE))

    async def page(
        self,
        statement: Select[Any],
        key: SortKey,
        *,
        after: tuple[Any, uuid.UUID] | None,
        limit: int,
    ) -> list[tuple[Row[Any], Any]]:
        """Up to `limit + 1` rows after the cursor position, each with its cursor value.

        Rows, not ORM objects: a page is only read and serialised, and skipping the identity
        map and instance state makes the most frequent query in the service markedly cheaper.
        A row has every column of a task as an attribute, just as a `Task` does.
        """
        id_column: Any = Task.id
        if key.attr == _SCORE:
            # Relevance is computed, so order and compare on it from a subquery.
            ranked = statement.with_only_columns(
                *_TASK_COLUMNS, statement.selected_columns[_SCORE]
            ).subquery()
            statement = select(*ranked.c)
            id_column = ranked.c.id
            key = replace(key, column=ranked.c[_SCORE])
        else:
            statement = statement.with_only_columns(*_TASK_COLUMNS)
        if after is not None:
            statement = statement.where(key.after(id_column, *after))
        statement = statement.order_by(*key.order_by(id_column)).limit(limit + 1)
        rows = (await self.session.execute(statement)).all()
        if key.attr == _SCORE:
            return [(row, getattr(row, _SCORE)) for row in rows]
        return [(row, key.value_of(row)) for row in rows]

    async def count(self, statement: Select[Any]) -> int:
        total = await self.session.scalar(select(func.count()).select_from(statement.subquery()))
        return int(total or 0)

    async def stats(
        self,
        owner_id: uuid.UUID,
        now: datetime,
        today: tuple[datetime, datetime],
        week_ago: datetime,
    ) -> dict[str, int]:
        """Counts by status and priority, overdue, due today and recently completed, at once."""
        open_task = Task.status != TaskStatus.done

        def count_if(condition: ColumnElement[bool]) -> Any:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        columns: dict[str, Any] = {"total": func.count()}
        columns |= {f"status:{s.value}": count_if(Task.status == s) for s in TaskStatus}
        columns |= {f"priority:{p.value}": count_if(Task.priority == p) for p in TaskPriority}
        columns["overdue"] = count_if(_overdue(now))
        columns["due_today"] = count_if(
            and_(open_task, Task.due_at >= today[0], Task.due_at < today[1])
        )
        columns["completed_last_7_days"] = count_if(Task.completed_at >= week_ago)
        statement = select(*(c.label(f"c{i}") for i, c in enumerate(columns.values())))
        mine = statement.where(Task.owner_id == owner_id, Task.archived_at.is_(None))
        row = (await self.session.execute(mine)).one()
        return {name: int(value) for name, value in zip(columns, row, strict=True)}


def _overdue(now: datetime) -> ColumnElement[bool]:
    return and_(Task.status != TaskStatus.done, Task.due_at.is_not(None), Task.due_at < now)
