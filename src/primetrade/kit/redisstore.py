"""The shared Redis connection, behind a circuit breaker so an outage costs nothing per request.

Every caller goes through `RedisStore.run`: while Redis is failing, calls are refused at once
(`StoreUnavailable`) instead of each waiting for a timeout, and one call per breaker period
probes whether it is back. An outage is logged and counted once, when it starts.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from primetrade.kit.logging import get_logger
from primetrade.kit.metrics import REDIS_ERRORS, REDIS_OUTAGES

log = get_logger(__name__)
T = TypeVar("T")
# What a failing Redis raises: its own errors, and socket errors that escape the client.
FAILURES = (RedisError, OSError, TimeoutError)


class StoreUnavailable(Exception):
    """Redis cannot be used right now; the caller falls back (or refuses) by its own rule."""


class Breaker:
    """Closed while calls succeed; after a failure, open for `seconds`, then one probe."""

    def __init__(self, component: str, seconds: float) -> None:
        self.component = component
        self.seconds = seconds
        self.down = False
        self._retry_at = 0.0

    def allow(self, *, probe: bool = False) -> bool:
        if not self.down or probe:
            return True
        now = time.monotonic()
        if now < self._retry_at:
            return False
        # Only the first caller after the pause probes; the others keep skipping meanwhile.
        self._retry_at = now + self.seconds
        return True

    def failed(self, exc: BaseException) -> None:
        REDIS_ERRORS.labels(self.component).inc()
        self._retry_at = time.monotonic() + self.seconds
        if not self.down:
            self.down = True
            REDIS_OUTAGES.labels(self.component).inc()
            log.warning("redis_unavailable", component=self.component, error=type(exc).__name__)

    def succeeded(self) -> None:
        if self.down:
            self.down = False
            log.info("redis_recovered", component=self.component)


def client_options(timeout: float) -> dict[str, Any]:
    """Options for a redis-py client that fails fast: short timeouts and no retries.

    redis-py retries a failed command three times with backoff by default; the breaker
    decides about retrying here, so a dead Redis costs one timeout, not four and some sleep.
    """
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
    }


class RedisStore:
    """One client, one key prefix and one breaker, shared by the cache and the revocations."""

    def __init__(self, url: str, *, prefix: str, timeout: float, breaker_seconds: float) -> None:
        # One pool for the cache, the revocations and the rate-limit counters of this process.
        self.pool = ConnectionPool.from_url(url, **client_options(timeout))
        self.client = Redis(connection_pool=self.pool)
        self.prefix = prefix
        self.breaker = Breaker("store", breaker_seconds)
        self._lost_writes = False

    def key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(part) for part in parts)

    async def run(self, call: Callable[[Redis], Awaitable[T]], *, probe: bool = False) -> T:
        """`call(client)`, or StoreUnavailable when Redis is failing (or known to be down)."""
        if not self.breaker.allow(probe=probe):
            raise StoreUnavailable(self.breaker.component)
        try:
            if self._lost_writes:
                await self._forget_everything()
            result = await call(self.client)
        except FAILURES as exc:
            self.breaker.failed(exc)
            raise StoreUnavailable(self.breaker.component) from exc
        self.breaker.succeeded()
        return result

    def lost_write(self) -> None:
        """An invalidation could not be written: drop every cached entry once Redis is back."""
        self._lost_writes = True

    async def _forget_everything(self) -> None:
        # Entries cached elsewhere under a version this instance failed to bump would be served
        # again once Redis returns; a new epoch (part of every cache key) makes them unreachable.
        await bump_counter(self.client, self.key("epoch"))
        self._lost_writes = False
        log.info("redis_cache_epoch_bumped")

    async def ping(self) -> bool:
        """Whether Redis answers now (a real probe, even while the breaker is open)."""
        try:
            await self.run(lambda client: client.ping(), probe=True)
        except StoreUnavailable:
            return False
        return True

    async def close(self) -> None:
        await self.client.aclose()
        await self.pool.aclose()


async def bump_counter(client: Redis, key: str) -> None:
    """INCR `key`; a missing key first starts from the clock, never again from zero.

    A counter that vanished (evicted, or Redis restarted without persistence) and restarted at
    zero would reach old values again, and with them entries cached under those values.
    """
    async with client.pipeline(transaction=False) as pipe:
        pipe.set(key, initial_counter(), nx=True)
        pipe.incr(key)
        await pipe.execute()


def initial_counter() -> int:
    """Microseconds since the epoch: larger than any count reached since an earlier start."""
    return time.time_ns() // 1000
