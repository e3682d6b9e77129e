"""The scaled-out deployment end to end: nginx, three instances, Redis, a streaming replica.

One cluster for the module (tests/cluster.py, on free ports), torn down after. Each test
talks from its own loopback address (127.0.0.x; Linux routes all of 127/8 to `lo`): nginx
and the instances see a distinct client per test, so one test's per-IP budgets are never
spent by another. Correctness checks talk to the instances directly as well as through
nginx, because nginx retries an idempotent request that failed on another instance, which
would hide a failing one.
"""

from __future__ import annotations

import itertools
import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster import Cluster, Ports, missing_tools
from tests.helpers import API, PASSWORD

pytestmark = pytest.mark.slow

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
AUTH_LIMIT = 6  # sign-in calls per client address per day: small, so exhausting it is cheap
TIMEOUT = 30.0
BOGUS_REFRESH = {"refresh_token": "not-a-refresh-token-0123456789abcdefghijklmnop"}
_addresses = itertools.count(10)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Primary + replica, Redis, three instances and nginx, all on free loopback ports."""
    missing = missing_tools()
    if missing:
        reason = f"the cluster needs: {', '.join(missing)}"
        if IN_CI:
            pytest.fail(f"CI: {reason}")
        pytest.skip(f"SKIPPED cluster tests: {reason}")
    # Not under pytest's tmp_path: its folders are private to root, and PostgreSQL runs as
    # `postgres`. `down()` deletes this folder.
    state = Path(tempfile.mkdtemp(prefix="primetrade-cluster-"))
    settings = {
        "RATE_LIMIT_AUTH": f"{AUTH_LIMIT}/day",  # a day: a window boundary mid-test is rare
        "RATE_LIMIT_USER": "100000/hour",  # the bursts below must not meet this one
        "DB_REPLICA_CHECK_SECONDS": "1",  # a stopped or paused replica is noticed sooner
    }
    running = Cluster(state=state, ports=Ports.free(), settings=settings)
    running.up()
    try:
        yield running
    finally:
        running.down()


def connect(base_url: str, address: str) -> httpx.Client:
    """A client whose connections come from `address`."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=f"{base_url}{API}", transport=transport, timeout=TIMEOUT)


@pytest.fixture
def address() -> str:
    """A loopback address no other test uses."""
    return f"127.0.0.{next(_addresses)}"


@pytest.fixture
def clients(cluster: Cluster, address: str) -> Iterator[tuple[httpx.Client, ...]]:
    """nginx, then each instance directly, all from this test's address."""
    with ExitStack() as stack:
        urls = [cluster.url, *cluster.instance_urls]
        yield tuple(stack.enter_context(connect(url, address)) for url in urls)


def sign_up(http: httpx.Client) -> dict[str, str]:
    """Register and sign in a new user; the sign-in's tokens."""
    email = f"user-{time.monotonic_ns()}@example.com"
    account = {"email": email, "password": PASSWORD}
    registered = http.post("/auth/register", json=account)
    assert registered.status_code == 201, registered.text
    login = http.post("/auth/login", json=account)
    assert login.status_code == 200, login.text
    tokens: dict[str, str] = login.json()
    return tokens


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def create_task(http: httpx.Client, headers: dict[str, str], title: str) -> dict[str, Any]:
    created = http.post("/tasks", json={"title": title}, headers=headers)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def assert_sees(http: httpx.Client, headers: dict[str, str], task: dict[str, Any]) -> None:
    single = http.get(f"/tasks/{task['id']}", headers=headers)
    assert single.status_code == 200, f"{http.base_url}: {single.text}"
    assert single.json()["title"] == task["title"], http.base_url
    listed = http.get("/tasks", headers=headers, params={"limit": 100})
    assert listed.status_code == 200, f"{http.base_url}: {listed.text}"
    titles = {item["id"]: item["title"] for item in listed.json()["items"]}
    assert titles.get(task["id"]) == task["title"], http.base_url


def assert_instances_use_the_replica(cluster: Cluster) -> None:
    """Every instance reports its replica usable (else the replica tests would prove nothing).

    Polled a bounded number of times: the instances probe their replicas in the background.
    """
    states: dict[str, dict[str, str]] = {}
    for _ in range(50):
        states = {url: replica_states(url) for url in cluster.instance_urls}
        if all(replicas and set(replicas.values()) == {"ok"} for replicas in states.values()):
            return
        time.sleep(0.1)
    pytest.fail(f"not every instance can read from the replica: {states}")


def replica_states(instance_url: str) -> dict[str, str]:
    checks = httpx.get(f"{instance_url}/ready", timeout=TIMEOUT).json().get("checks", {})
    replicas: dict[str, str] = checks.get("replicas", {})
    return replicas


# --- Shared state ---------------------------------------------------------------------------


def test_a_write_on_one_instance_is_read_by_the_others(
    clients: tuple[httpx.Client, ...],
) -> None:
    _, a, b, c = clients
    headers = bearer(sign_up(a))
    for round_ in range(3):
        task = create_task(a, headers, f"Written on A, round {round_}")
        for other in (b, c):
            assert_sees(other, headers, task)
        renamed = a.patch(
            f"/tasks/{task['id']}", json={"title": f"Renamed {round_}"}, headers=headers
        )
        assert renamed.status_code == 200, renamed.text
        for other in (b, c):
            assert_sees(other, headers, renamed.json())
        profile = a.patch("/users/me", json={"full_name": f"Name {round_}"}, headers=headers)
        assert profile.status_code == 200, profile.text
        for other in (b, c):
            me = other.get("/users/me", headers=headers)
            assert (me.status_code, me.json()["full_name"]) == (200, f"Name {round_}")


def test_a_rate_limit_allows_exactly_its_budget_across_all_instances(
    clients: tuple[httpx.Client, ...],
) -> None:
    assert_one_budget_across(clients[1:])


def assert_one_budget_across(instances: tuple[httpx.Client, ...]) -> None:
    """Sign-in calls spread over the instances, from one address, get AUTH_LIMIT in all."""
    statuses = [
        instances[attempt % len(instances)].post("/auth/refresh", json=BOGUS_REFRESH).status_code
        for attempt in range(AUTH_LIMIT * len(instances) + len(instances))
    ]
    allowed = [status for status in statuses if status != 429]
    assert len(allowed) == AUTH_LIMIT, statuses
    assert statuses[AUTH_LIMIT:] == [429] * (len(statuses) - AUTH_LIMIT), statuses


def test_a_logout_on_one_instance_is_refused_by_the_others(
    clients: tuple[httpx.Client, ...],
) -> None:
    _, a, b, c = clients
    tokens = sign_up(a)
    for other in (b, c):  # each instance has seen, and may remember, the valid token
        assert other.get("/users/me", headers=bearer(tokens)).status_code == 200
    logout = a.post(
        "/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=bearer(tokens)
    )
    assert logout.status_code == 204, logout.text
    for other in (b, c):
        assert other.get("/users/me", headers=bearer(tokens)).status_code == 401, other.base_url
    refreshed = b.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401, refreshed.text


@pytest.mark.parametrize("client_address", ["127.0.0.1", "fresh"])
def test_a_spoofed_forwarded_for_does_not_change_the_rate_limit_key(
    cluster: Cluster, address: str, client_address: str
) -> None:
    # 127.0.0.1 is also nginx's own address, which the instances trust as a proxy.
    source = address if client_address == "fresh" else client_address
    instances = len(cluster.instance_urls)
    with connect(cluster.url, source) as http:
        statuses = [
            http.post(
                "/auth/refresh",
                json=BOGUS_REFRESH,
                headers={"X-Forwarded-For": f"198.51.100.{attempt}"},
            ).status_code
            for attempt in range(AUTH_LIMIT * instances + 1)
        ]
    # However the instances share their counters, a key that moved with the header would
    # never run out.
    assert statuses[-1] == 429, statuses
    impostor_address = f"127.0.0.{next(_addresses)}"
    with connect(cluster.url, impostor_address) as impostor:
        posing = impostor.post(
            "/auth/refresh", json=BOGUS_REFRESH, headers={"X-Forwarded-For": source}
        )
    assert posing.status_code != 429, "a client claiming another's address took its limit"


# --- The replica ----------------------------------------------------------------------------


def test_a_read_right_after_a_write_sees_it_while_the_replica_lags(
    cluster: Cluster, clients: tuple[httpx.Client, ...]
) -> None:
    through_nginx, a, b, c = clients
    headers = bearer(sign_up(a))
    assert_instances_use_the_replica(cluster)
    cluster.sql("replica", "SELECT pg_wal_replay_pause()")
    try:
        task = create_task(a, headers, "Written while the replica is paused")
        # The lag is real: the replica has not applied the write.
        on_replica = cluster.sql("replica", f"SELECT count(*) FROM tasks WHERE id = '{task['id']}'")
        assert on_replica == "0"
        for http in (b, c, through_nginx, a):
            assert_sees(http, headers, task)
    finally:
        cluster.sql("replica", "SELECT pg_wal_replay_resume()")


def test_reads_continue_on_the_primary_when_the_replica_stops(
    cluster: Cluster, clients: tuple[httpx.Client, ...]
) -> None:
    through_nginx, a, b, c = clients
    headers = bearer(sign_up(a))
    task = create_task(a, headers, "Read while the replica is down")
    for http in (b, c):
        assert_sees(http, headers, task)
    assert_instances_use_the_replica(cluster)
    cluster.replica.stop("fast")
    try:
        for _ in range(3):
            for http in (a, b, c, through_nginx):
                assert_sees(http, headers, task)
                assert http.get("/users/me", headers=headers).status_code == 200
        later = create_task(b, headers, "Written while the replica is down")
        for http in (a, c):
            assert_sees(http, headers, later)
    finally:
        cluster.replica.start()


# --- Redis ----------------------------------------------------------------------------------


def test_the_api_serves_while_redis_is_down_and_shares_state_again_after(
    cluster: Cluster, clients: tuple[httpx.Client, ...]
) -> None:
    through_nginx, a, b, c = clients
    headers = bearer(sign_up(a))
    task = create_task(a, headers, "Before the Redis outage")
    cluster.stop_redis()
    try:
        for http in (a, b, c, through_nginx):
            assert_sees(http, headers, task)
            assert http.get("/users/me", headers=headers).status_code == 200
        during = create_task(c, headers, "During the Redis outage")
        assert_sees(b, headers, during)
        for url in cluster.instance_urls:
            ready = httpx.get(f"{url}/ready", timeout=TIMEOUT)
            assert ready.status_code == 200, url  # the database still serves every request
            assert ready.json()["status"] == "degraded", url
            assert ready.json()["checks"]["redis"] == "down", url
        # Sign-in limits cannot be counted, so sign-in fails closed, on every instance.
        for http in (a, b, c):
            login = http.post("/auth/login", json={"email": "x@example.com", "password": "y"})
            assert login.status_code == 503, login.text
            assert login.json()["code"] == "rate_limit_unavailable"
            assert int(login.headers["retry-after"]) >= 1
    finally:
        cluster.start_redis()
    # Back: each instance tries Redis again once its breaker's pause is over; until then its
    # sign-in limits fail closed (503). Then counters are shared again, and revocations too.
    for url in cluster.instance_urls:
        with connect(url, f"127.0.0.{next(_addresses)}") as instance:
            wait_for_sign_in_limits(instance)
    with ExitStack() as stack:
        address = f"127.0.0.{next(_addresses)}"
        urls = cluster.instance_urls
        assert_one_budget_across(tuple(stack.enter_context(connect(u, address)) for u in urls))
    tokens = sign_up(b)
    logout = b.post(
        "/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=bearer(tokens)
    )
    assert logout.status_code == 204, logout.text
    for other in (a, c):
        assert other.get("/users/me", headers=bearer(tokens)).status_code == 401


def wait_for_sign_in_limits(instance: httpx.Client) -> None:
    """Until the instance checks sign-in limits again (bounded polling, not a timing claim)."""
    for _ in range(200):
        answer = instance.post("/auth/refresh", json=BOGUS_REFRESH)
        if answer.status_code != 503:
            return
        assert answer.json()["code"] == "rate_limit_unavailable", answer.text
        time.sleep(0.1)
    pytest.fail(f"{instance.base_url} never checked its sign-in limits again")


# --- Graceful shutdown ----------------------------------------------------------------------


class Burst:
    """Idempotent GETs through nginx from several threads until stopped; every outcome kept."""

    def __init__(self, http: httpx.Client, paths: list[str], headers: dict[str, str]) -> None:
        self.http, self.paths, self.headers = http, paths, headers
        self.outcomes: list[int | str] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        for path in itertools.cycle(self.paths):
            if self.stopped.is_set():
                return
            try:
                outcome: int | str = self.http.get(path, headers=self.headers).status_code
            except httpx.HTTPError as exc:
                outcome = f"{type(exc).__name__}: {exc}"
            self.outcomes.append(outcome)

    def wait_for(self, count: int) -> None:
        """Until `count` requests have been answered (bounded, so a stall fails the test)."""
        for _ in range(600):
            if len(self.outcomes) >= count:
                return
            time.sleep(0.05)
        pytest.fail(f"the burst stalled at {len(self.outcomes)} requests")


def test_sigterm_during_a_burst_fails_no_request_and_exits_0(
    cluster: Cluster, address: str
) -> None:
    with connect(cluster.url, address) as http:
        headers = bearer(sign_up(http))
        task = create_task(http, headers, "Read during a shutdown")
        burst = Burst(http, ["/tasks", f"/tasks/{task['id']}", "/users/me"], headers)
        with ThreadPoolExecutor(max_workers=6) as pool:
            workers = [pool.submit(burst.run) for _ in range(6)]
            try:
                burst.wait_for(100)
                cluster.signal_instance(1, signal.SIGTERM)
                exit_code = cluster.wait_exit(1)
                burst.wait_for(len(burst.outcomes) + 200)
            finally:
                burst.stopped.set()
                for worker in workers:
                    worker.result()
    try:
        failures = [outcome for outcome in burst.outcomes if outcome != 200]
        assert failures == [], f"{len(failures)} of {len(burst.outcomes)} failed: {failures[:5]}"
        assert exit_code == 0
    finally:
        cluster.start_instance(1)
        cluster.wait_ready(1)
