"""Periodic jobs: a schedule in code, fired into the outbox once per period.

Time is cut into slots of each entry's period, counted from the Unix epoch (shifted by the
entry's offset: a daily job at 07:00 UTC has 24-hour slots starting at 07:00), so every
scheduler agrees on them. Firing a slot enqueues the job with the key
`schedule:<name>:<slot>`; the outbox's unique key lets exactly one insert win, so two
schedulers running at once (or a restarted one) fire each slot once.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from primetrade.jobs.outbox import enqueue
from primetrade.kit.db import session_scope, utcnow
from primetrade.kit.logging import get_logger
from primetrade.settings import Settings

log = get_logger(__name__)
LONGEST_SLEEP_SECONDS = 60.0  # re-read the clock at least this often (it may jump)


DAY_SECONDS = 86400
WEEK_SECONDS = 7 * DAY_SECONDS
WEEKLY_OFFSET = 4 * DAY_SECONDS + 6 * 3600  # Thursday 1970-01-01 + 4 days = Monday, 06:00


@dataclass(frozen=True, slots=True)
class Periodic:
    name: str
    every_seconds: int
    job_type: str
    payload: dict[str, Any] = field(default_factory=dict)
    # Where slots start, in seconds after each multiple of `every_seconds` since the epoch.
    offset_seconds: int = 0

    def slot(self, now: float) -> int:
        return int((now - self.offset_seconds) // self.every_seconds)

    def seconds_to_next(self, now: float) -> float:
        return self.every_seconds - (now - self.offset_seconds) % self.every_seconds


def daily(name: str, job_type: str, *, hour_utc: int) -> Periodic:
    """A job fired once a day from `hour_utc` on (a scheduler started later fires it then)."""
    return Periodic(name, DAY_SECONDS, job_type, offset_seconds=hour_utc * 3600)


def schedule_for(settings: Settings) -> tuple[Periodic, ...]:
    """Every periodic job, with the times the settings ask for."""
    return _schedule(digest_hour_utc=settings.digest_hour_utc)


def _schedule(*, digest_hour_utc: int) -> tuple[Periodic, ...]:
    return (
        Periodic("outbox.purge", 3600, "outbox.purge"),
        Periodic("idempotency.purge", 3600, "idempotency.purge"),
        Periodic("mail.purge", 3600, "mail.purge"),
        # Reminders go out up to this late; small against REMINDER_LEAD_MINUTES.
        Periodic("notifications.reminders", 300, "notifications.reminders"),
        daily("notifications.digest", "notifications.digest", hour_utc=digest_hour_utc),
        Periodic("exports.purge", 3600, "exports.purge"),
        daily("tasks.archive", "tasks.archive", hour_utc=3),
        # Once a week; the epoch began on a Thursday, so this slot starts Monday 06:00 UTC.
        Periodic("reports.weekly", WEEK_SECONDS, "reports.weekly", offset_seconds=WEEKLY_OFFSET),
    )


# With the default times (what a scheduler built without settings runs).
SCHEDULE = _schedule(digest_hour_utc=Settings.model_fields["digest_hour_utc"].default)


class Scheduler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        schedule: tuple[Periodic, ...] = SCHEDULE,
        *,
        heartbeat: Path | None = None,
    ) -> None:
        self._sessions = sessions
        self._schedule = schedule
        # Touched after every tick (at least once a minute): a container's health check reads
        # its age, since a scheduler has no port to probe.
        self._heartbeat = heartbeat
        self._fired: dict[str, int] = {}
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Fire each slot as it starts, until `request_stop` (or a cancellation)."""
        log.info("scheduler_started", jobs=[entry.name for entry in self._schedule])
        while not self._stopping.is_set():
            try:
                pause = await self.tick()
            except Exception as exc:
                log.warning("scheduler_tick_failed", error=repr(exc))
                pause = 5.0
            else:
                if self._heartbeat is not None:
                    self._heartbeat.touch()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._stopping.wait()

    def request_stop(self) -> None:
        """Leave `run` once the slot being fired is in the outbox."""
        self._stopping.set()

    async def tick(self) -> float:
        """Fire the slots not fired yet; the seconds until the next slot starts."""
        now = utcnow().timestamp()
        for entry in self._schedule:
            slot = entry.slot(now)
            if self._fired.get(entry.name) != slot:
                await self._fire(entry, slot)
                self._fired[entry.name] = slot
        return min(
            LONGEST_SLEEP_SECONDS,
            *(entry.seconds_to_next(now) for entry in self._schedule),
        )

    async def _fire(self, entry: Periodic, slot: int) -> None:
        key = f"schedule:{entry.name}:{slot}"
        async with session_scope(self._sessions) as session:
            fired = await enqueue(session, entry.job_type, entry.payload, key=key)
        if fired is not None:
            log.info("scheduled_job_fired", name=entry.name, slot=slot)
