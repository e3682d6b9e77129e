"""Real engines for the background-work tests: an SMTP server, brokers, a worker process.

RabbitMQ is found at TEST_RABBITMQ_URL (default `amqp://guest:guest@127.0.0.1:5672/`) and Redis
at TEST_REDIS_URL. Each test takes a queue (RabbitMQ) or key namespace (Redis) of its own and
deletes it afterwards. Without a reachable broker its tests are skipped and say why, except
under CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pika
import pytest
import redis
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from primetrade.jobs.models import OutboxEntry
from primetrade.kit.db import session_scope
from tests.pgserver import free_port
from tests.redisserver import IN_CI, REDIS_URL

RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
WAIT_SECONDS = 30.0  # a job that never arrives fails the test instead of hanging the run


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait until `check()` holds (polling), or fail saying what never happened."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def jobs_settled(application: Any) -> bool:
    """Whether every job in the outbox has been handed on (run, in the embedded mode)."""
    async with session_scope(application.state.runtime.sessions) as session:
        waiting = await session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxEntry)
            .where(OutboxEntry.published_at.is_(None))
        )
    return waiting == 0


# --- SMTP ------------------------------------------------------------------------------------


def _open_gate() -> threading.Event:
    gate = threading.Event()
    gate.set()
    return gate


@dataclass
class Mailbox:
    """Every message a loopback SMTP server received.

    A closed `gate` holds each session at RCPT TO, before any message is accepted: a send
    stays in flight for as long as a test needs. `refusal` answers every RCPT TO instead of
    accepting it (a send that always fails).
    """

    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    gate: threading.Event = field(default_factory=_open_gate)
    held: int = 0
    refusal: str | None = None

    async def handle_RCPT(  # noqa: N802 - the hook name aiosmtpd calls
        self, _server: SMTP, _session: Session, envelope: Envelope, address: str, _options: Any
    ) -> str:
        if not self.gate.is_set():
            self.held += 1
            # Off the server's loop: other sessions are still served meanwhile.
            await asyncio.get_running_loop().run_in_executor(None, self.gate.wait)
        if self.refusal is not None:
            return self.refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - the hook name aiosmtpd calls
        self, _server: SMTP, _session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def smtp_server(*, held: bool = False, refusal: str | None = None) -> Iterator[tuple[str, Mailbox]]:
    """(MAIL_URL, mailbox) of an aiosmtpd server on loopback, in its own thread.

    `held`: the mailbox's gate starts closed. `refusal`: see `Mailbox`.
    """
    mailbox = Mailbox(refusal=refusal)
    if held:
        mailbox.gate.clear()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}?starttls=false", mailbox
    finally:
        mailbox.gate.set()  # a held session's thread must end before the server can stop
        controller.stop()


# --- Brokers ---------------------------------------------------------------------------------


def _unavailable(name: str, reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI needs {name}: {reason}")
    pytest.skip(f"SKIPPED {name} tests: {reason}")


def rabbitmq_queue() -> Iterator[str]:
    """A queue name of one's own on the shared RabbitMQ; its queues are deleted afterwards."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    except pika.exceptions.AMQPError as exc:
        _unavailable("RabbitMQ", f"{RABBITMQ_URL} unreachable: {exc!r}")
    connection.close()
    queue = f"primetrade-test-{uuid.uuid4().hex[:12]}"
    try:
        yield queue
    finally:
        connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
        channel = connection.channel()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
        connection.close()


def redis_namespace() -> Iterator[str]:
    """A REDIS_PREFIX of one's own on the shared Redis; its keys are deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        client.close()
        _unavailable("Redis", f"{REDIS_URL} unreachable: {exc!r}")
    prefix = f"primetrade-test-{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
        client.close()


class TcpProxy:
    """A loopback TCP forwarder: the broker 'goes away' when it stops, 'returns' when it starts.

    Stopping closes the listener and every forwarded connection, as a broker restart would.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, upstream_writer})
        await asyncio.gather(
            self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()
        self._writers.discard(writer)


@dataclass
class BrokerLeg:
    """A queue (or key prefix) of one's own on a broker, reached directly or through `proxy`.

    `proxied_url` reaches the broker through the proxy: the broker is away while it is stopped.
    """

    name: str
    url: str
    proxied_url: str
    settings: dict[str, str]
    proxy: TcpProxy


BROKERS = ["rabbitmq", "redis"]
_DEFAULT_PORTS = {"rabbitmq": 5672, "redis": 6379}


@contextlib.contextmanager
def broker_leg(name: str) -> Iterator[BrokerLeg]:
    """A BrokerLeg on the shared RabbitMQ or Redis (its proxy not started yet)."""
    if name == "rabbitmq":
        with contextlib.contextmanager(rabbitmq_queue)() as queue:
            yield _leg(name, RABBITMQ_URL, {"broker_queue": queue})
        return
    with contextlib.contextmanager(redis_namespace)() as prefix:
        yield _leg(name, REDIS_URL, {"broker_queue": "jobs", "redis_prefix": prefix})


def _leg(name: str, url: str, settings: dict[str, str]) -> BrokerLeg:
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or _DEFAULT_PORTS[name])
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{proxy.port}" if userinfo else f"127.0.0.1:{proxy.port}"
    return BrokerLeg(name, url, urlunsplit(parts._replace(netloc=netloc)), settings, proxy)


# --- A worker process ------------------------------------------------------------------------


def settings_env(**settings: Any) -> dict[str, str]:
    """The process environment that gives `primetrade` these settings (and nothing else)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "CI"}
    }
    defaults = {
        "environment": "test",
        "log_level": "WARNING",
        "secret_key": "test-secret-key-0123456789abcdef0123456789",
    }
    for name, value in {**defaults, **settings}.items():
        env[name.upper()] = str(value)
    return env


def start_worker(
    tmp_path: Path, metrics_port: int, **settings: Any
) -> tuple[subprocess.Popen[bytes], Path]:
    """A `primetrade worker` process with these settings, and the file it logs to."""
    log = tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log"
    command = [
        str(Path(sys.executable).parent / "primetrade"),
        "worker",
        "--processes=1",
        "--threads=2",
        f"--metrics-port={metrics_port}",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own CLI, waited for off the loop
            command,
            cwd=tmp_path,
            env=settings_env(**settings),
            stdout=output,
            stderr=output,
            # A group of its own: `os.killpg` then reaches the worker processes Dramatiq forks,
            # as a killed container would.
            start_new_session=True,
        )
    return process, log


@contextlib.asynccontextmanager
async def worker_process(tmp_path: Path, **settings: Any) -> AsyncIterator[int]:
    """`primetrade worker` with these settings; yields its metrics port, stops it with SIGTERM."""
    metrics_port = free_port()
    process, log = start_worker(tmp_path, metrics_port, **settings)
    try:
        yield metrics_port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)
        if process.returncode not in (0, -signal.SIGTERM):
            pytest.fail(f"worker exited {process.returncode}:\n{log.read_text()}")


# --- A database of one's own ---------------------------------------------------------------
#
# Every app started on a database runs an outbox relay, and without a broker that relay runs
# the jobs it finds. The suite's shared apps would pick up these tests' jobs with their own
# settings, so the background-work tests keep to private databases, one per engine and module.

FAST = {
    "job_min_backoff_seconds": 0.01,
    "job_max_backoff_seconds": 0.05,
    "outbox_poll_seconds": 0.05,
    "outbox_max_backoff_seconds": 0.2,
    "embedded_scheduler": False,
    "mail_url": "console://",
}


def private_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database on the leg `request.param` (SQLite, PostgreSQL, or PostgreSQL through
    PgBouncer), dropped afterwards."""
    from primetrade.migrations import upgrade

    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('jobs') / 'jobs.db'}"
        upgrade(url)
        yield url
        return
    databases = request.getfixturevalue("postgres_databases")
    url = databases.create()
    upgrade(url)
    try:
        if request.param == "pgbouncer":
            yield request.getfixturevalue("pgbouncer").url_for(url)
        else:
            yield url
    finally:
        databases.drop(url)


@contextlib.asynccontextmanager
async def app_builder(database_url: str) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Start apps on `database_url` with FAST settings (overridable); stop and empty after."""
    from primetrade.app import create_app
    from tests.conftest import make_settings, truncate_all

    started: list[tuple[Any, Any]] = []

    async def build(**overrides: Any) -> Any:
        application = create_app(make_settings(database_url, **{**FAST, **overrides}))
        lifespan = application.router.lifespan_context(application)
        await lifespan.__aenter__()
        started.append((application, lifespan))
        return application

    try:
        yield build
    finally:
        for _application, lifespan in reversed(started):
            await lifespan.__aexit__(None, None, None)
        if started:
            await _truncate(started[0][0], truncate_all)


async def _truncate(application: Any, truncate_all: Callable[[Any], Awaitable[None]]) -> None:
    # The app is stopped by now; its engine still opens connections for the cleanup.
    await truncate_all(application)
    await application.state.runtime.engine.dispose()
