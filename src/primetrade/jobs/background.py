"""The background work a `primetrade serve` process runs beside the API.

Always the outbox relay. Without BROKER_URL (the embedded mode) the relay runs the jobs
itself, and the process fires the periodic jobs too, so one process does everything.
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from primetrade.jobs import metrics
from primetrade.jobs.broker import Publisher
from primetrade.jobs.registry import JobEnv, job_types, load_all
from primetrade.jobs.relay import STOP_GRACE_SECONDS, Relay
from primetrade.jobs.scheduler import Scheduler, schedule_for
from primetrade.mail.backends import build_mailer
from primetrade.settings import Settings


class Background:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        read_sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        load_all()
        self.env = JobEnv(settings, sessions, read_sessions, build_mailer(settings))
        self.publisher = Publisher(settings) if settings.broker_url else None
        self.relay = Relay(self.env, self.publisher)
        embedded = settings.broker_url is None
        if embedded:  # this process runs the jobs
            metrics.expose_job_types(job_types())
        self.scheduler = (
            Scheduler(sessions, schedule_for(settings))
            if embedded and settings.embedded_scheduler
            else None
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        if self.scheduler is not None:
            self._tasks.append(asyncio.create_task(self.scheduler.run(), name="scheduler"))

    async def stop(self) -> None:
        """Stop the loops between steps, then give running jobs their grace period.

        Asking rather than cancelling matters: a task cancelled inside a database
        transaction can leave its connection unreturned, and on SQLite that connection
        would hold the write lock after the process thought it had let go.
        """
        self.relay.request_stop()
        if self.scheduler is not None:
            self.scheduler.request_stop()
        if self._tasks:
            _done, late = await asyncio.wait(self._tasks, timeout=STOP_GRACE_SECONDS)
            for task in late:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks.clear()
        await self.relay.stop()
        if self.publisher is not None:
            await self.publisher.close()
