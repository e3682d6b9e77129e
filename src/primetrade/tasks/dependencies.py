"""Chained dependencies: a task from the path, checked for visibility; conditional headers."""

from __future__ import annotations

import uuid
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Depends, Header, Query, Request

from primetrade.auth.dependencies import AdminUser, CurrentUser
from primetrade.kit.conditional import versions_in
from primetrade.kit.errors import InvalidInput
from primetrade.runtime import SAFE_METHODS, SessionDep
from primetrade.tasks import service
from primetrade.tasks.models import Task


async def get_visible_task(
    task_id: uuid.UUID, request: Request, session: SessionDep, user: CurrentUser
) -> Task:
    writing = request.method not in SAFE_METHODS
    return await service.get_visible(session, user, task_id, for_update=writing)


async def get_any_task(
    task_id: uuid.UUID, request: Request, session: SessionDep, admin: AdminUser
) -> Task:
    writing = request.method not in SAFE_METHODS
    return await service.get_visible(session, admin, task_id, as_admin=True, for_update=writing)


TaskFromPath = Annotated[Task, Depends(get_visible_task)]
AnyTaskFromPath = Annotated[Task, Depends(get_any_task)]


async def get_if_match(
    if_match: Annotated[str | None, Header(description='e.g. `"v3"` from an ETag.')] = None,
) -> frozenset[int] | None:
    return versions_in(if_match)


IfMatch = Annotated[frozenset[int] | None, Depends(get_if_match)]
IfNoneMatch = Annotated[str | None, Header()]


async def get_time_zone(
    tz: Annotated[str, Query(max_length=64, description="IANA time zone for 'today'.")] = "UTC",
) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"Unknown time zone {tz!r}.", field=["query", "tz"]) from exc


TimeZone = Annotated[ZoneInfo, Depends(get_time_zone)]
