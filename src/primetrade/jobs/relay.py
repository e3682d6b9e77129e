"""The outbox relay: hands committed jobs on, to the broker or to the in-process runner.

It runs in the lifespan of every `primetrade serve` process. That is where jobs are
written, so the relay is woken the moment a request commits one (no polling delay on the
request path), and it scales with the instances: relays of several instances share the rows
through `SKIP LOCKED` leases (see `outbox.claim`). Rows written elsewhere (by the scheduler,
or by jobs that enqueue jobs) are found by polling every OUTBOX_POLL_SECONDS.

With a broker, a failed publish leaves the rows in the outbox and the relay backs off
(doubling up to OUTBOX_MAX_BACKOFF_SECONDS), logging and counting each failure; rows go out
when the broker answers again. Without one, the relay runs the jobs itself, a few at a time,
with the same retries, backoff and dead letters as a worker (see `runner`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from primetrade.jobs import metrics, outbox
from primetrade.jobs.broker import Publisher
from primetrade.jobs.registry import JobEnv
from primetrade.jobs.repository import DeadJobRepository
from primetrade.jobs.runner import JobMessage, RetryLater, execute
from primetrade.kit.db import session_scope
from primetrade.kit.logging import get_logger

log = get_logger(__name__)
PUBLISH_LEASE_SECONDS = 60.0
METRICS_EVERY_SECONDS = 15.0
STOP_GRACE_SECONDS = 5.0


class Relay:
    def __init__(self, env: JobEnv, publisher: Publisher | None) -> None:
        self._env = env
        self._publisher = publisher
        self._wake = asyncio.Event()
        self._stopping = False
        self._running: set[asyncio.Task[None]] = set()
        self._failures = 0
        self._sampled_at = 0.0

    async def run(self) -> None:
        """Relay until `request_stop` (or a cancellation)."""
        outbox.register_relay(self._wake)
        try:
            while not self._stopping:
                pause = await self._step()
                if self._stopping:
                    break
                if pause > 0:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                    # cancellation that arrives as the event is set, and the relay would
                    # never stop.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(pause):
                            await self._wake.wait()
                self._wake.clear()
        finally:
            outbox.unregister_relay(self._wake)

    def request_stop(self) -> None:
        """Finish the step under way and leave `run`: no transaction is cut in half."""
        self._stopping = True
        self._wake.set()

    async def stop(self) -> None:
        """Let jobs running in this process finish for a moment; cut the rest short.

        A job cut short keeps its outbox lease and runs again once the lease ends.
        """
        if self._running:
            await asyncio.wait(self._running, timeout=STOP_GRACE_SECONDS)
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _step(self) -> float:
        try:
            await self._sample_metrics()
            if self._publisher is not None:
                return await self._publish_due(self._publisher)
            return await self._run_due()
        except Exception as exc:
            # The database is away (or another failure outside a job): try again shortly.
            log.warning("outbox_relay_failed", error=repr(exc))
            return self._backoff()

    def _backoff(self) -> float:
        self._failures += 1
        settings = self._env.settings
        pause: float = settings.outbox_poll_seconds * 2 ** min(self._failures, 16)
        return min(pause, settings.outbox_max_backoff_seconds)

    async def _claim(self, limit: int, lease_seconds: float) -> list[outbox.Claimed]:
        # A cheap read first, so an idle relay never takes SQLite's write lock.
        async with session_scope(self._env.read_sessions) as session:
            if not await outbox.has_due(session):
                return []
        async with session_scope(self._env.sessions) as session:
            return await outbox.claim(session, limit=limit, lease_seconds=lease_seconds)

    # --- With a broker ---------------------------------------------------------------------

    async def _publish_due(self, publisher: Publisher) -> float:
        batch = self._env.settings.outbox_batch_size
        claimed = await self._claim(batch, PUBLISH_LEASE_SECONDS)
        published = []
        try:
            for row in claimed:
                await publisher.publish(_message(row))
                published.append(row.id)
        except Exception as exc:
            metrics.OUTBOX_PUBLISH_FAILURES.inc()
            pause = self._backoff()
            log.warning(
                "broker_unavailable",
                error=repr(exc),
                waiting=len(claimed) - len(published),
                retry_in_seconds=pause,
            )
            unsent = [row.id for row in claimed[len(published) :]]
            await self._settle(published, unsent, pause, repr(exc))
            return pause
        await self._settle(published, [], 0, "")
        self._failures = 0
        return 0 if len(claimed) == batch else self._env.settings.outbox_poll_seconds

    async def _settle(
        self, published: list[uuid.UUID], unsent: list[uuid.UUID], pause: float, error: str
    ) -> None:
        async with session_scope(self._env.sessions) as session:
            await outbox.mark_published(session, published)
            await outbox.postpone(session, unsent, seconds=pause, error=error)
        metrics.OUTBOX_PUBLISHED.labels("broker").inc(len(published))

    # --- In process ------------------------------------------------------------------------

    async def _run_due(self) -> float:
        settings = self._env.settings
        free = settings.embedded_job_concurrency - len(self._running)
        if free <= 0:
            return settings.outbox_poll_seconds  # a finishing job wakes the relay
        # The lease outlasts the job's time limit, so no other relay starts it meanwhile.
        claimed = await self._claim(free, settings.job_time_limit_seconds + 60)
        for row in claimed:
            task = asyncio.create_task(self._run_one(row), name=f"job:{row.job_type}")
            self._running.add(task)
            task.add_done_callback(self._job_finished)
        self._failures = 0
        return 0 if len(claimed) == free else settings.outbox_poll_seconds

    def _job_finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()

    async def _run_one(self, row: outbox.Claimed) -> None:
        try:
            await execute(self._env, _message(row))
        except RetryLater as retry:
            await self._bookkeep(
                row,
                outbox.postpone,
                [row.id],
                seconds=retry.delay_ms / 1000,
                error=retry.error,
            )
            return
        except Exception as exc:
            # Not the job's failure (the database went away): the lease brings it back.
            log.warning("job_not_run", job_type=row.job_type, error=repr(exc))
            return
        if await self._bookkeep(row, outbox.mark_published, [row.id]):
            metrics.OUTBOX_PUBLISHED.labels("embedded").inc()

    async def _bookkeep(
        self, row: outbox.Claimed, step: Callable[..., Awaitable[None]], *args: Any, **kwargs: Any
    ) -> bool:
        """Record what became of a job; if the database refuses, the lease brings it back.

        A job that ran and could not be marked runs again after its lease, and its run key
        (see the runner) makes that second run a no-op.
        """
        try:
            async with session_scope(self._env.sessions) as session:
                await step(session, *args, **kwargs)
        except Exception as exc:
            log.warning("job_bookkeeping_failed", job_type=row.job_type, error=repr(exc))
            return False
        return True

    # --- Metrics ---------------------------------------------------------------------------

    async def _sample_metrics(self) -> None:
        now = time.monotonic()
        if now - self._sampled_at < METRICS_EVERY_SECONDS:
            return
        self._sampled_at = now
        async with session_scope(self._env.read_sessions) as session:
            waiting, age, due = await outbox.backlog(session)
            dead = await DeadJobRepository(session).count_waiting()
        metrics.OUTBOX_BACKLOG.set(waiting)
        metrics.OUTBOX_OLDEST_AGE.set(age)
        metrics.DEAD_JOBS.set(dead)
        if self._publisher is None:
            metrics.QUEUE_DEPTH.set(due)
            return
        try:
            metrics.QUEUE_DEPTH.set(await self._publisher.queue_depth())
        except Exception as exc:
            log.info("queue_depth_unavailable", error=repr(exc))


def _message(row: outbox.Claimed) -> JobMessage:
    return JobMessage(str(row.id), row.job_type, row.payload, row.run_key)
