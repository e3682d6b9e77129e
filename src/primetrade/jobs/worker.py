"""The Dramatiq broker module of `primetrade worker` (`dramatiq primetrade.jobs.worker:broker`).

Imported by each worker process: it builds the broker for BROKER_URL with the middleware
the jobs need and declares the one actor, which runs any job type through `runner.execute`.

- Acknowledged late: Dramatiq acknowledges a message only after the actor returned (or
  failed for good), so a worker killed mid-job leaves the message to be delivered again.
- Retries: the runner decides (attempts counted in the database) and raises
  `dramatiq.Retry` with its backoff; the last failure is dead-lettered by the runner and the
  message acknowledged, so Dramatiq's own dead-letter queue stays empty.
- Async: the AsyncIO middleware runs the actor on one event loop per process, where the
  database engine and the mailer live.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import (
    AsyncIO,
    Middleware,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from primetrade.jobs import metrics
from primetrade.jobs.broker import ACTOR_NAME, build_broker
from primetrade.jobs.registry import JobEnv, job_types
from primetrade.jobs.runner import JobMessage, RetryLater, execute
from primetrade.kit.cache import bind
from primetrade.kit.db import create_engine, create_sessionmaker, read_only, uses_pgbouncer
from primetrade.kit.logging import configure_logging
from primetrade.kit.redisstore import RedisStore
from primetrade.mail.backends import build_mailer
from primetrade.runtime import build_cache, build_redis
from primetrade.settings import LogFormat, Settings, get_settings


class WorkerEnv(Middleware):
    """Builds the jobs' environment when a worker boots and closes it when it stops."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: AsyncEngine | None = None
        self.redis: RedisStore | None = None
        self.env: JobEnv | None = None

    def get(self) -> JobEnv:
        """The environment, made on first use (on the event loop that will use it)."""
        if self.env is None:
            self.engine = engine = create_engine(self.settings)
            sessions = create_sessionmaker(engine)
            # Jobs that change a user's tasks (archiving) make that user's cached reads stale
            # on every server, as a request does, through the shared Redis cache. Without
            # Redis each server caches in its own memory, out of a worker's reach: those
            # entries end with their TTL.
            self.redis = build_redis(self.settings)
            if self.redis is not None:
                bind(sessions, build_cache(self.settings, self.redis))
            self.env = JobEnv(
                self.settings,
                sessions,
                # Through PgBouncer, reads need a transaction too (see `read_only`).
                create_sessionmaker(
                    read_only(
                        engine, pgbouncer=uses_pgbouncer(self.settings, self.settings.database_url)
                    )
                ),
                build_mailer(self.settings),
            )
        return self.env

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # Runs before the AsyncIO middleware stops the loop (after-hooks run in reverse).
        loop_thread = get_event_loop_thread()
        if self.engine is not None and loop_thread is not None:
            loop_thread.run_coroutine(self.engine.dispose())
        if self.redis is not None and loop_thread is not None:
            loop_thread.run_coroutine(self.redis.close())


def _always_retry(_retries: int, _exception: BaseException) -> bool:
    # The runner dead-letters a job itself once its retries are spent; anything that still
    # raises (the database away, say) must stay in the queue rather than be dropped.
    return True


def create_broker(settings: Settings) -> tuple[dramatiq.Broker, WorkerEnv]:
    environment = WorkerEnv(settings)
    time_limit_ms = int((settings.job_time_limit_seconds + 30) * 1000)
    middleware: list[Middleware] = [
        TimeLimit(time_limit=time_limit_ms),
        ShutdownNotifications(),
        Retries(retry_when=_always_retry),
        AsyncIO(),
        environment,
    ]
    created = build_broker(settings, middleware=middleware)

    async def run_job(**fields: Any) -> None:
        try:
            await execute(environment.get(), JobMessage(**fields))
        except RetryLater as retry:
            raise dramatiq.Retry(str(retry), delay=retry.delay_ms) from retry

    declare = dramatiq.actor(
        actor_name=ACTOR_NAME, queue_name=settings.broker_queue, broker=created
    )
    declare(run_job)
    return created, environment


def _boot() -> dramatiq.Broker:
    settings = get_settings()
    configure_logging(
        json=settings.effective_log_format is LogFormat.json, level=settings.log_level
    )
    metrics.expose_job_types(job_types())
    created, _environment = create_broker(settings)
    dramatiq.set_broker(created)
    return created


broker = _boot()
