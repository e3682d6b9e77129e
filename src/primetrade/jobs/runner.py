"""Running one job: the same steps whether a broker worker or the server process runs it.

1. Count the attempt under the job's run key; a job that already finished is skipped, so a
   redelivered message redoes nothing.
2. Run the handler. Success marks the run done.
3. A failure is retried with exponential backoff (`RetryLater` says when) until
   JOB_MAX_RETRIES retries have failed; the last failure moves the job to the dead jobs,
   where an admin can see it and send it again.

Attempts are counted in the database, not in the broker message, so an attempt that died
with its process (SIGKILL, out of memory) counts too and a poisoned job cannot loop forever.
"""

from __future__ import annotations

import asyncio
import enum
import time
import traceback
from dataclasses import dataclass
from typing import Any

from dramatiq.common import compute_backoff

from primetrade.jobs import metrics
from primetrade.jobs.registry import JobContext, JobEnv, handler_for
from primetrade.jobs.repository import DeadJobRepository, JobRunRepository
from primetrade.kit.db import session_scope
from primetrade.kit.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class JobMessage:
    """What travels to whoever runs the job (also the broker message's keyword arguments)."""

    outbox_id: str
    job_type: str
    payload: dict[str, Any]
    run_key: str


class Outcome(enum.StrEnum):
    done = "done"
    duplicate = "duplicate"
    dead = "dead"


class RetryLater(Exception):
    """The attempt failed and the job should run again after `delay_ms`."""

    def __init__(self, job_type: str, attempt: int, delay_ms: int, error: str) -> None:
        super().__init__(f"{job_type} attempt {attempt} failed: {error}")
        self.delay_ms = delay_ms
        self.error = error


class UnknownJobType(Exception):
    """No handler is registered for the job type: retrying cannot help."""


def backoff_ms(env: JobEnv, attempt: int) -> int:
    """Dramatiq's own exponential backoff with jitter, so both modes wait alike."""
    settings = env.settings
    _, delay = compute_backoff(
        attempt - 1,
        factor=max(1, int(settings.job_min_backoff_seconds * 1000)),
        max_backoff=max(1, int(settings.job_max_backoff_seconds * 1000)),
    )
    return int(delay)


async def execute(env: JobEnv, message: JobMessage) -> Outcome:
    """Run one delivery of a job; raises RetryLater when it should be tried again."""
    attempt = await _begin(env, message)
    if attempt is None:
        log.info("job_already_finished", job_type=message.job_type, run_key=message.run_key)
        metrics.JOBS_SKIPPED.labels(message.job_type).inc()
        return Outcome.duplicate
    started = time.perf_counter()
    try:
        await _run_handler(env, message, attempt)
    except Exception as exc:
        elapsed = time.perf_counter() - started
        return await _failed(env, message, attempt, exc, elapsed)
    metrics.JOB_DURATION.labels(message.job_type, "ok").observe(time.perf_counter() - started)
    async with session_scope(env.sessions) as session:
        await JobRunRepository(session).finish(message.run_key, "done")
    log.info("job_done", job_type=message.job_type, run_key=message.run_key, attempt=attempt)
    return Outcome.done


async def _run_handler(env: JobEnv, message: JobMessage, attempt: int) -> None:
    handler = handler_for(message.job_type)
    if handler is None:
        raise UnknownJobType(f"no handler for job type {message.job_type!r}")
    context = JobContext(env, message.job_type, message.run_key, attempt)
    async with asyncio.timeout(env.settings.job_time_limit_seconds):
        await handler(context, dict(message.payload))


async def _begin(env: JobEnv, message: JobMessage) -> int | None:
    """Count this attempt; None when the job already finished (done or dead)."""
    async with session_scope(env.sessions) as session:
        return await JobRunRepository(session).begin(message.run_key, message.job_type)


async def _failed(
    env: JobEnv, message: JobMessage, attempt: int, exc: Exception, elapsed: float
) -> Outcome:
    metrics.JOB_FAILURES.labels(message.job_type).inc()
    error = "".join(traceback.format_exception_only(exc)).strip()
    last = attempt > env.settings.job_max_retries or isinstance(exc, UnknownJobType)
    log.warning(
        "job_failed",
        job_type=message.job_type,
        run_key=message.run_key,
        attempt=attempt,
        error=error,
        final=last,
        exc_info=exc,
    )
    if not last:
        metrics.JOB_DURATION.labels(message.job_type, "error").observe(elapsed)
        raise RetryLater(message.job_type, attempt, backoff_ms(env, attempt), error) from exc
    metrics.JOB_DURATION.labels(message.job_type, "dead").observe(elapsed)
    details = "".join(traceback.format_exception(exc, limit=-8))
    # The dead letter and the run's end in one transaction: never one without the other.
    async with session_scope(env.sessions) as session:
        DeadJobRepository(session).record(
            message.job_type, message.payload, message.run_key, details[-8000:], attempt
        )
        await JobRunRepository(session).finish(message.run_key, "dead")
    metrics.JOBS_DEAD_LETTERED.labels(message.job_type).inc()
    return Outcome.dead
