"""Dramatiq brokers chosen by BROKER_URL, and the publisher the relay hands jobs to."""

from __future__ import annotations

import asyncio
import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

from primetrade.jobs.runner import JobMessage
from primetrade.kit.logging import get_logger
from primetrade.settings import Settings

ACTOR_NAME = "primetrade.run_job"
# A broker that stops answering must not stall the relay or the shutdown: the blocking call
# is left behind (a late publish is one more at-least-once delivery) and the relay backs off.
PUBLISH_TIMEOUT_SECONDS = 10.0
CLOSE_TIMEOUT_SECONDS = 5.0
log = get_logger(__name__)


def build_broker(settings: Settings, middleware: list[Middleware] | None = None) -> dramatiq.Broker:
    """The broker for BROKER_URL: RabbitMQ for amqp(s)://, Redis for redis(s)://."""
    url = settings.broker_url
    if url is None:
        raise ValueError("BROKER_URL is not set")
    scheme = url.split("://", 1)[0]
    if scheme in {"amqp", "amqps"}:
        # Publisher confirms: a publish returns once RabbitMQ has the message, so the outbox
        # row is marked published only for a message that cannot be lost any more.
        return RabbitmqBroker(url=url, confirm_delivery=True, middleware=middleware)
    if scheme in {"redis", "rediss"}:
        namespace = f"{settings.redis_prefix}jobs"
        return RedisBroker(url=url, namespace=namespace, middleware=middleware)  # type: ignore[no-untyped-call]
    raise ValueError(f"BROKER_URL scheme {scheme!r} is not amqp, amqps, redis or rediss")


def broker_message(settings: Settings, message: JobMessage) -> dramatiq.Message[Any]:
    return dramatiq.Message(
        queue_name=settings.broker_queue,
        actor_name=ACTOR_NAME,
        args=(),
        kwargs=dataclasses.asdict(message),
        options={},
        message_id=message.outbox_id,
    )


def queue_depth(broker: dramatiq.Broker, queue: str) -> int:
    """Messages waiting in the queue, including those delayed for a retry."""
    if isinstance(broker, RabbitmqBroker):
        ready, delayed, _dead = broker.get_queue_message_counts(queue)
        return ready + delayed
    if isinstance(broker, RedisBroker):
        name = f"{broker.namespace}:{queue}"
        return int(broker.client.llen(name)) + int(broker.client.llen(f"{name}.DQ"))
    return 0


class Publisher:
    """Publishes to the broker from one dedicated thread.

    Dramatiq's brokers are blocking and keep one connection per thread: a single thread
    keeps a single connection, reused for every publish and closed at the end.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._broker = build_broker(settings, middleware=[])
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-publish")

    async def publish(self, message: JobMessage) -> None:
        outgoing = broker_message(self._settings, message)
        # asyncio.timeout rather than wait_for, which on Python 3.11 can swallow a
        # cancellation arriving as the call completes (and then a stop never ends).
        async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
            await self._call(self._broker.enqueue, outgoing)

    async def queue_depth(self) -> int:
        async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
            depth: int = await self._call(queue_depth, self._broker, self._settings.broker_queue)
        return depth

    async def close(self) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                await self._call(self._broker.close)
                await self._call(_disconnect_redis, self._broker)
        except TimeoutError:
            log.warning("broker_close_timed_out")
        self._thread.shutdown(wait=False)

    async def _call(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)


def _disconnect_redis(broker: Any) -> None:
    # Dramatiq's RedisBroker.close() leaves its connection pool to the garbage collector,
    # which may finalise a socket before its connection (an unclosed-socket warning).
    client = getattr(broker, "client", None)
    if client is not None:
        client.connection_pool.disconnect()
