"""Background work: the outbox, in-process jobs, retries and dead letters, the admin API, the
scheduler, and real worker processes on RabbitMQ and Redis (with the broker away a while, dead
letters, and the outbox and queue gauges)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from primetrade.bootstrap import ensure_admin
from primetrade.jobs import JobContext, enqueue, job
from primetrade.jobs import relay as relay_module
from primetrade.jobs.models import DeadJob, JobRun, OutboxEntry
from primetrade.jobs.scheduler import SCHEDULE, Scheduler
from primetrade.kit.db import session_scope, utcnow
from primetrade.kit.idempotency import IdempotencyKey
from primetrade.mail import send_email
from primetrade.mail.models import SentMail
from tests.conftest import DATABASE_LEGS, asgi_client
from tests.helpers import API, PASSWORD, Api, assert_problem
from tests.jobsupport import (
    BROKERS,
    BrokerLeg,
    TcpProxy,
    app_builder,
    broker_leg,
    eventually,
    private_database,
    rabbitmq_queue,
    redis_namespace,
    settings_env,
    smtp_server,
    worker_process,
)
from tests.redisserver import REDIS_URL

JOBS = f"{API}/admin/jobs"
recorded: list[tuple[str, dict[str, Any]]] = []
failures_left: dict[str, int] = {}


@job("test.record")
async def record(ctx: JobContext, payload: dict[str, Any]) -> None:
    recorded.append((ctx.run_key, payload))


@job("test.flaky")
async def flaky(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Fails while its name has failures left (forever with -1), then records."""
    name = payload["name"]
    if failures_left.get(name, 0) != 0:
        failures_left[name] -= 1
        raise RuntimeError(f"{name} is not ready")
    recorded.append((ctx.run_key, payload))


@pytest.fixture(autouse=True)
def _fresh_records() -> None:
    recorded.clear()
    failures_left.clear()


@pytest.fixture(scope="module", params=DATABASE_LEGS)
def jobs_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    yield from private_database(request, tmp_path_factory)


@pytest.fixture
async def apps(jobs_db: str) -> AsyncIterator[Callable[..., Awaitable[FastAPI]]]:
    async with app_builder(jobs_db) as build:
        yield build


async def count(app: FastAPI, *where: Any, model: Any = OutboxEntry) -> int:
    async with session_scope(app.state.runtime.sessions) as session:
        statement = select(func.count()).select_from(model).where(*where)
        return int(await session.scalar(statement) or 0)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- In process ------------------------------------------------------------------------------


async def test_a_committed_job_runs_and_a_rolled_back_one_never_exists(apps: Any) -> None:
    app = await apps()
    sessions = app.state.runtime.sessions

    async def failing_request() -> None:
        async with session_scope(sessions) as session:
            await enqueue(session, "test.record", {"n": "rolled back"})
            raise RuntimeError("request failed")

    with pytest.raises(RuntimeError, match="request failed"):
        await failing_request()
    async with session_scope(sessions) as session:
        await enqueue(session, "test.record", {"n": "committed"})

    async def ran() -> bool:
        return len(recorded) == 1

    await eventually(ran, "the committed job")
    assert recorded[0][1] == {"n": "committed"}
    assert await count(app) == 1  # the rolled-back job never reached the table
    await eventually(
        lambda: _truthy(count(app, OutboxEntry.published_at.is_not(None))), "the row's settling"
    )
    # The job records itself before the runner commits its run as done.
    await eventually(lambda: _truthy(count(app, JobRun.status == "done", model=JobRun)), "done")
    assert await count(app, model=JobRun) == 1


async def _truthy(value: Awaitable[int]) -> bool:
    return bool(await value)


async def test_a_key_enqueues_once_and_unknown_types_are_refused(apps: Any) -> None:
    app = await apps()
    async with session_scope(app.state.runtime.sessions) as session:
        first = await enqueue(session, "test.record", {"n": 1}, key="once")
        second = await enqueue(session, "test.record", {"n": 2}, key="once")
        with pytest.raises(ValueError, match="unknown job type"):
            await enqueue(session, "test.nothing", {})
    assert first is not None
    assert second is None
    await eventually(_truthy_len(recorded, 1), "the job")
    assert recorded == [("once", {"n": 1})]
    assert await count(app) == 1


def _truthy_len(items: list[Any], length: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(items) >= length

    return check


async def test_a_flaky_job_is_retried_with_backoff_until_it_succeeds(apps: Any) -> None:
    app = await apps(job_max_retries=3)
    failures_left["flaky"] = 2
    async with session_scope(app.state.runtime.sessions) as session:
        await enqueue(session, "test.flaky", {"name": "flaky"})
    await eventually(_truthy_len(recorded, 1), "the third attempt")
    # The job records itself before the runner commits its run as done.
    await eventually(
        lambda: _truthy(count(app, JobRun.status == "done", model=JobRun)), "the run's settling"
    )
    async with session_scope(app.state.runtime.sessions) as session:
        run = await session.scalar(select(JobRun))
    assert run is not None
    assert (run.status, run.attempts) == ("done", 3)
    assert await count(app, model=DeadJob) == 0


# --- Dead letters and the admin API ----------------------------------------------------------


async def admin_client(app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    api = Api(client)
    account = await api.account()
    await ensure_admin(app.state.runtime.settings, account.email, PASSWORD, None)
    login = await api.login(account.email)
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_a_poisoned_job_is_dead_lettered_and_an_admin_retries_it(apps: Any) -> None:
    app = await apps(job_max_retries=2)
    failures_left["poison"] = -1
    before = metric("jobs_dead_lettered_total", job_type="test.flaky")
    async with session_scope(app.state.runtime.sessions) as session:
        await enqueue(session, "test.flaky", {"name": "poison"}, key="poison-1")

    async def dead() -> bool:
        return await count(app, model=DeadJob) == 1

    await eventually(dead, "the dead letter")
    assert metric("jobs_dead_lettered_total", job_type="test.flaky") == before + 1
    async with asgi_client(app) as client:
        user = await Api(client).account()
        assert (await client.get(JOBS, headers=user.headers)).status_code == 403
        headers = await admin_client(app, client)
        listing = await client.get(JOBS, headers=headers, params={"include_total": "true"})
        assert listing.status_code == 200, listing.text
        body = listing.json()
        assert body["total"] == 1
        item = body["items"][0]
        assert (item["job_type"], item["run_key"], item["attempts"]) == (
            "test.flaky",
            "poison-1",
            3,
        )
        assert "poison is not ready" in item["error"]
        assert item["retried_at"] is None

        failures_left["poison"] = 0  # fixed: the retry succeeds
        retried = await client.post(f"{JOBS}/{item['id']}/retry", headers=headers)
        assert retried.status_code == 202, retried.text
        assert retried.json()["retried_at"] is not None
        await eventually(_truthy_len(recorded, 1), "the retried job")
        assert recorded == [("poison-1", {"name": "poison"})]

        again = await client.post(f"{JOBS}/{item['id']}/retry", headers=headers)
        assert_problem(again, 409, "dead_job_already_retried")
        missing = await client.post(f"{JOBS}/{uuid.uuid4()}/retry", headers=headers)
        assert_problem(missing, 404, "dead_job_not_found")
        waiting = await client.get(JOBS, headers=headers, params={"retried": "false"})
        assert waiting.json()["items"] == []
        bad_cursor = await client.get(JOBS, headers=headers, params={"cursor": "nonsense"})
        assert_problem(bad_cursor, 400, "invalid_cursor")


async def test_dead_jobs_page_newest_first(apps: Any) -> None:
    app = await apps()
    async with session_scope(app.state.runtime.sessions) as session:
        for number in range(3):
            session.add(
                DeadJob(
                    job_type="test.flaky",
                    payload={"n": number},
                    run_key=f"dead-{number}",
                    error="boom",
                    attempts=6,
                    failed_at=utcnow(),
                )
            )
    async with asgi_client(app) as client:
        headers = await admin_client(app, client)
        first = (await client.get(JOBS, headers=headers, params={"limit": 2})).json()
        cursor = first["next_cursor"]
        second = (await client.get(JOBS, headers=headers, params={"cursor": cursor})).json()
    keys = [item["run_key"] for item in first["items"] + second["items"]]
    assert sorted(keys) == ["dead-0", "dead-1", "dead-2"]
    assert second["next_cursor"] is None


# --- The schedule ----------------------------------------------------------------------------


async def test_the_scheduler_process_fires_the_schedule_beats_and_stops_on_sigterm(
    apps: Any, jobs_db: str, tmp_path: Path
) -> None:
    app = await apps(embedded_scheduler=False)  # only the process below fires anything
    heartbeat, log = tmp_path / "scheduler.alive", tmp_path / "scheduler.log"
    command = [str(Path(sys.executable).parent / "primetrade"), "scheduler"]
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603, ASYNC220 - our own CLI; Popen returns at once
            [*command, f"--heartbeat-file={heartbeat}"],
            cwd=tmp_path,
            env=settings_env(database_url=jobs_db),
            stdout=output,
            stderr=output,
        )
    try:

        async def beating() -> bool:
            return heartbeat.exists()

        await eventually(beating, "the scheduler's first heartbeat")
        # The beat comes after the check: every slot is in the outbox by then.
        assert await count(app, OutboxEntry.dedupe_key.like("schedule:%")) == len(SCHEDULE)
    finally:
        process.send_signal(signal.SIGTERM)
        status = await asyncio.to_thread(process.wait, 30)
    assert status == 0, log.read_text()


async def test_two_schedulers_fire_each_slot_once_and_the_purges_work(apps: Any) -> None:
    app = await apps()
    sessions = app.state.runtime.sessions
    owner, now = uuid.uuid4(), utcnow()
    async with session_scope(sessions) as session:
        for key, expires in (
            ("old", now.replace(year=now.year - 1)),
            ("live", now.replace(year=now.year + 1)),
        ):
            session.add(
                IdempotencyKey(
                    owner_id=owner,
                    key=key,
                    request_hash="x",
                    status_code=201,
                    headers={},
                    body=b"{}",
                    created_at=now,
                    expires_at=expires,
                )
            )
    first, second = Scheduler(sessions), Scheduler(sessions)
    await first.tick()
    await second.tick()
    fired = OutboxEntry.dedupe_key.like("schedule:%")
    assert await count(app, fired) == len(SCHEDULE)

    async def purged() -> bool:
        return await count(app, model=IdempotencyKey) == 1

    await eventually(purged, "the expired idempotency key's purge")
    async with session_scope(sessions) as session:
        left = await session.scalar(select(IdempotencyKey.key))
    assert left == "live"


# --- Real worker processes -------------------------------------------------------------------


@pytest.fixture
def rabbit_queue() -> Iterator[str]:
    yield from rabbitmq_queue()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    yield from redis_namespace()


async def unpublished(app: FastAPI) -> int:
    return await count(app, OutboxEntry.published_at.is_(None))


async def welcome(app: FastAPI, number: int) -> None:
    """What a sign-up request would do: its change and its email in one transaction."""
    async with session_scope(app.state.runtime.sessions) as session:
        await send_email(
            session,
            to=f"user{number}@example.com",
            template="welcome",
            context={"name": f"User {number}", "email": f"user{number}@example.com"},
        )


@pytest.mark.slow
async def test_rabbitmq_away_then_back_delivers_every_job_once(
    apps: Any, jobs_db: str, rabbit_queue: str, tmp_path: Path
) -> None:
    proxy = TcpProxy("127.0.0.1", 5672)  # not started yet: the broker is unreachable
    with smtp_server() as (mail_url, mailbox):
        broker = {"broker_queue": rabbit_queue, "mail_url": mail_url}
        app = await apps(broker_url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/", **broker)
        failed_before = metric("outbox_publish_failures_total")
        for number in range(3):
            await welcome(app, number)  # every commit succeeds with the broker away

        async def publish_failed() -> bool:
            return metric("outbox_publish_failures_total") > failed_before

        await eventually(publish_failed, "a failed publish")
        assert await unpublished(app) == 3

        await proxy.start()
        try:
            await eventually(lambda: _none(unpublished(app)), "publishing once the broker is back")
            worker_broker = "amqp://guest:guest@127.0.0.1:5672/"
            async with worker_process(
                tmp_path, database_url=jobs_db, broker_url=worker_broker, **broker
            ) as metrics_port:
                await eventually(_truthy_len(mailbox.messages, 3), "three welcome emails")
                await eventually(lambda: _all_done(app, 3), "three finished runs")
                async with httpx.AsyncClient() as http:
                    scraped = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        finally:
            await proxy.stop()
    assert sorted(to for [to] in mailbox.recipients) == [f"user{n}@example.com" for n in range(3)]
    assert await count(app, model=SentMail) == 3
    assert 'job_duration_seconds_count{job_type="mail.send",outcome="ok"} 3.0' in scraped


async def _none(value: Awaitable[int]) -> bool:
    return await value == 0


async def _all_done(app: FastAPI, expected: int) -> bool:
    return await count(app, JobRun.status == "done", model=JobRun) == expected


@pytest.mark.slow
async def test_redis_worker_runs_jobs_and_ignores_a_redelivery(
    apps: Any, jobs_db: str, redis_prefix: str, tmp_path: Path
) -> None:
    with smtp_server() as (mail_url, mailbox):
        broker = {
            "broker_url": REDIS_URL,
            "redis_prefix": redis_prefix,
            "broker_queue": "jobs",
            "mail_url": mail_url,
        }
        app = await apps(**broker)
        async with worker_process(tmp_path, database_url=jobs_db, **broker) as metrics_port:
            await welcome(app, 1)
            await eventually(_truthy_len(mailbox.messages, 1), "the welcome email")
            await eventually(lambda: _all_done(app, 1), "the finished run")
            # As if the relay died between publishing and marking, and its lease ran out: the
            # row goes out again.
            async with session_scope(app.state.runtime.sessions) as session:
                reset = {"published_at": None, "available_at": utcnow()}
                await session.execute(update(OutboxEntry).values(**reset))
            await eventually(lambda: _none(unpublished(app)), "the second publish")
            await eventually(lambda: _queue_empty(redis_prefix), "the redelivery consumed")
            async with httpx.AsyncClient() as http:
                scraped = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    assert 'jobs_duplicate_deliveries_total{job_type="mail.send"} 1.0' in scraped
    assert len(mailbox.messages) == 1
    assert await count(app, model=SentMail) == 1


async def _queue_empty(prefix: str) -> bool:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        waiting = await client.llen(f"{prefix}jobs:jobs")
        acks = [key async for key in client.scan_iter(match=f"{prefix}jobs:__acks__*")]
        pending = sum([await client.scard(key) for key in acks])
    finally:
        await client.aclose()
    return waiting + pending == 0


# --- Real worker processes on either broker --------------------------------------------------


@pytest.fixture(params=BROKERS)
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[BrokerLeg]:
    with broker_leg(request.param) as leg:
        try:
            yield leg
        finally:
            await leg.proxy.stop()


async def sign_up(client: httpx.AsyncClient, numbers: range) -> None:
    """Real registrations: each commits its account and its welcome email together."""
    for number in numbers:
        body = {"email": f"signup{number}@example.com", "password": PASSWORD}
        response = await client.post(f"{API}/auth/register", json=body)
        assert response.status_code == 201, response.text


def failed_since(before: float) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return metric("outbox_publish_failures_total") > before

    return check


async def scrape(metrics_port: int) -> str:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text


@pytest.mark.slow
async def test_sign_ups_succeed_while_the_broker_goes_away_and_each_email_goes_once(
    apps: Any, jobs_db: str, broker: BrokerLeg, tmp_path: Path
) -> None:
    with smtp_server() as (mail_url, mailbox):
        settings = {**broker.settings, "mail_url": mail_url}
        await broker.proxy.start()
        app = await apps(broker_url=broker.proxied_url, **settings)
        async with asgi_client(app) as client:
            await sign_up(client, range(2))
            await eventually(lambda: _none(unpublished(app)), "publishing to the broker")
            failed_before = metric("outbox_publish_failures_total")
            await broker.proxy.stop()  # away between two requests, its connections cut
            await sign_up(client, range(2, 5))
            await eventually(failed_since(failed_before), "a failed publish")
        assert await unpublished(app) == 3
        await broker.proxy.start()
        await eventually(lambda: _none(unpublished(app)), "publishing once the broker is back")
        worker = {"database_url": jobs_db, "broker_url": broker.url, **settings}
        async with worker_process(tmp_path, **worker):
            await eventually(_truthy_len(mailbox.messages, 5), "five welcome emails")
            await eventually(lambda: _all_done(app, 5), "five finished runs")
    expected = [f"signup{number}@example.com" for number in range(5)]
    assert sorted(to for [to] in mailbox.recipients) == expected
    assert await count(app, model=SentMail) == 5


RETRY_FAST = {
    "job_max_retries": 2,
    "job_min_backoff_seconds": 0.01,
    "job_max_backoff_seconds": 0.05,
}


@pytest.mark.slow
async def test_a_real_worker_dead_letters_a_job_that_always_fails(
    apps: Any, jobs_db: str, broker: BrokerLeg, tmp_path: Path
) -> None:
    with smtp_server(refusal="550 5.1.1 Mailbox unavailable") as (mail_url, mailbox):
        settings = {**broker.settings, **RETRY_FAST, "broker_url": broker.url, "mail_url": mail_url}
        app = await apps(**settings)
        async with worker_process(tmp_path, database_url=jobs_db, **settings) as metrics_port:
            await welcome(app, 1)
            await eventually(lambda: _truthy(count(app, model=DeadJob)), "the dead letter")
            scraped = await scrape(metrics_port)
        # Listed once the worker is gone: the admin's own welcome email would fail as well.
        async with asgi_client(app) as client:
            listing = await client.get(JOBS, headers=await admin_client(app, client))
    assert listing.status_code == 200, listing.text
    [item] = listing.json()["items"]
    assert (item["job_type"], item["attempts"]) == ("mail.send", 3)
    assert "550" in item["error"]
    assert mailbox.messages == []
    assert 'job_failures_total{job_type="mail.send"} 3.0' in scraped
    assert 'jobs_dead_lettered_total{job_type="mail.send"} 1.0' in scraped
    # A type that never ran is there at zero from the start, so its rates exist.
    assert 'job_failures_total{job_type="reports.weekly"} 0.0' in scraped
    assert 'job_duration_seconds_count{job_type="reports.weekly",outcome="dead"} 0.0' in scraped


def gauges(**expected: Callable[[float], bool]) -> Callable[[], Awaitable[bool]]:
    """Whether every named gauge of this process passes its test."""

    async def check() -> bool:
        return all(test(metric(name)) for name, test in expected.items())

    return check


def equals(value: float) -> Callable[[float], bool]:
    return lambda sample: sample == value


def positive(sample: float) -> bool:
    return sample > 0


@pytest.mark.slow
async def test_the_outbox_and_queue_gauges_follow_an_outage(
    apps: Any, jobs_db: str, broker: BrokerLeg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sample at every relay step rather than every 15 seconds. The gauges are this process's
    # (any other relay alive here samples too): each check waits for the values it expects.
    monkeypatch.setattr(relay_module, "METRICS_EVERY_SECONDS", 0.0)
    app = await apps(broker_url=broker.proxied_url, **broker.settings)  # the proxy is stopped
    await eventually(gauges(outbox_backlog=equals(0)), "the relay's first sample")
    for number in range(3):
        await welcome(app, number)
    away = gauges(outbox_backlog=equals(3), outbox_oldest_age_seconds=positive)
    await eventually(away, "three rows waiting, the oldest for a while")
    await broker.proxy.start()
    drained = gauges(outbox_backlog=equals(0), outbox_oldest_age_seconds=equals(0))
    await eventually(drained, "an empty outbox once the broker is back")
    await eventually(gauges(jobs_queue_depth=equals(3)), "three jobs in the queue")
    worker = {"database_url": jobs_db, "broker_url": broker.url, **broker.settings}
    async with worker_process(tmp_path, **worker):
        await eventually(gauges(jobs_queue_depth=equals(0)), "an empty queue")
        await eventually(lambda: _all_done(app, 3), "three finished runs")
