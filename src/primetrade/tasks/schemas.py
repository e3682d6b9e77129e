"""The tasks API contract."""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from primetrade.tasks.models import TaskPriority, TaskStatus

MAX_TAGS = 20
MAX_TAG_LENGTH = 32
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=10_000)]
_SPACES = re.compile(r"\s+")
_WORDS = re.compile(r"[^\W_]+")
MAX_SEARCH_WORDS = 12


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


# Any offset is accepted; the instant is kept in UTC, so every answer shows the same value.
UTCDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


def normalise_tag(tag: str) -> str:
    """NFKC, trimmed, lower-case, inner runs of spaces as one hyphen: `Q3 Review` → `q3-review`."""
    tag = _SPACES.sub("-", unicodedata.normalize("NFKC", tag).strip().lower())
    if not tag:
        raise ValueError("a tag cannot be empty")
    if len(tag) > MAX_TAG_LENGTH:
        raise ValueError(f"a tag has at most {MAX_TAG_LENGTH} characters")
    return tag


def normalise_tags(tags: list[str]) -> list[str]:
    """Each tag normalised, duplicates dropped, first-seen order kept."""
    return list(dict.fromkeys(normalise_tag(tag) for tag in tags))


Tag = Annotated[str, StringConstraints(max_length=200), AfterValidator(normalise_tag)]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(normalise_tags)]


class TaskCreate(BaseModel):
    """A new task; only `title` is required."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description = ""
    status: TaskStatus = TaskStatus.todo
    priority: TaskPriority = TaskPriority.medium
    due_at: UTCDatetime | None = None
    tags: Tags = Field(default_factory=list)


_NOT_NULLABLE = ("title", "description", "status", "priority", "tags")


class TaskUpdate(BaseModel):
    """Fields to change; omitted fields stay as they are, `due_at: null` clears the due date."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: Description | None = None
    status: TaskStatus | None = None
    priority: TaskPriority | None = None
    due_at: UTCDatetime | None = None
    tags: Tags | None = None

    @model_validator(mode="after")
    def _no_null_for_required_fields(self) -> Self:
        for name in _NOT_NULLABLE:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    description: str
    status: TaskStatus
    priority: TaskPriority
    due_at: datetime | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    archived_at: datetime | None
    version: int


class AdminTaskRead(TaskRead):
    owner_id: uuid.UUID


class TaskStats(BaseModel):
    total: int
    by_status: dict[TaskStatus, int]
    by_priority: dict[TaskPriority, int]
    overdue: int = Field(description="Not done and past due.")
    due_today: int = Field(description="Not done and due today in the `tz` time zone.")
    completed_last_7_days: int


class TaskSort(StrEnum):
    created_at = "created_at"
    created_at_desc = "-created_at"
    updated_at = "updated_at"
    updated_at_desc = "-updated_at"
    due_at = "due_at"
    due_at_desc = "-due_at"
    priority = "priority"
    priority_desc = "-priority"
    title_asc = "title"
    title_desc = "-title"
    relevance = "relevance"


class TaskQuery(BaseModel):
    """Filters, order and page of a task list; every filter narrows the result."""

    status: list[TaskStatus] = Field(default_factory=list, max_length=3)
    priority: list[TaskPriority] = Field(default_factory=list, max_length=4)
    tag: list[Tag] = Field(
        default_factory=list, max_length=MAX_TAGS, description="Tasks carrying all these tags."
    )
    due_before: AwareDatetime | None = None
    due_after: AwareDatetime | None = None
    overdue: bool | None = Field(None, description="true: not done and past due; false: not.")
    q: str | None = Field(None, max_length=200, description="Words in the title or description.")
    archived: bool = Field(False, description="true: only archived tasks; false: only the others.")
    sort: TaskSort | None = Field(
        None,
        description="Default `-created_at`, or `relevance` when `q` is given. Relevance: "
        "for each word, 2 if it starts a title word and 1 if it starts a description word; "
        "title matches come first, ties newest first. Tasks without `due_at` come last "
        "in both directions.",
    )
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=1024)
    include_total: bool = False

    @model_validator(mode="after")
    def _relevance_needs_words(self) -> Self:
        if self.sort is TaskSort.relevance and not self.search_words:
            raise ValueError("sort=relevance needs a `q` with at least one word")
        return self

    @property
    def search_words(self) -> list[str]:
        """The words of `q` as both engines' tokenizers see them (letters and digits)."""
        return _WORDS.findall(self.q.lower())[:MAX_SEARCH_WORDS] if self.q else []

    @property
    def effective_sort(self) -> TaskSort:
        if self.sort is not None:
            return self.sort
        return TaskSort.relevance if self.search_words else TaskSort.created_at_desc


class AdminTaskQuery(TaskQuery):
    owner_id: uuid.UUID | None = Field(None, description="Only this user's tasks.")
