"""Job types and their handlers: `@job("mail.send")` over an async function.

A handler gets a `JobContext` and the job's JSON payload. It may run more than once for one
job (delivery is at least once), so it must be idempotent: `ctx.run_key` names the job for
that purpose, and a job that finished is never run again under the same key.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from primetrade.settings import Settings

if TYPE_CHECKING:
    # Only a type here: mail's jobs import this module, so a real import would be circular.
    from primetrade.mail.backends import Mailer

Handler = Callable[["JobContext", dict[str, Any]], Awaitable[None]]

# Every module that defines handlers; a process that runs jobs imports them all.
HANDLER_MODULES = (
    "primetrade.jobs.builtin",
    "primetrade.mail.jobs",
    "primetrade.accounts.jobs",
    "primetrade.notifications.jobs",
    "primetrade.exports.jobs",
    "primetrade.reports.jobs",
    "primetrade.tasks.jobs",
)


@dataclass(frozen=True, slots=True)
class JobEnv:
    """What handlers work with, in whichever process runs them."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    # Reads that take no write lock (a deferred transaction on SQLite, autocommit elsewhere).
    read_sessions: async_sessionmaker[AsyncSession]
    mailer: Mailer


@dataclass(frozen=True, slots=True)
class JobContext:
    env: JobEnv
    job_type: str
    run_key: str
    attempt: int


_handlers: dict[str, Handler] = {}


def job(job_type: str) -> Callable[[Handler], Handler]:
    """Register the decorated coroutine function as the handler of `job_type`."""

    def register(handler: Handler) -> Handler:
        if _handlers.get(job_type, handler) is not handler:
            raise ValueError(f"job type {job_type!r} already has a handler")
        _handlers[job_type] = handler
        return handler

    return register


def handler_for(job_type: str) -> Handler | None:
    return _handlers.get(job_type)


def job_types() -> frozenset[str]:
    load_all()
    return frozenset(_handlers)


def load_all() -> None:
    for module in HANDLER_MODULES:
        importlib.import_module(module)
