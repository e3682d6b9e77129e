"""Graceful shutdown: readiness turns off on the first stop signal (primetrade.server), and a
real `primetrade serve` stops accepting, finishes the request in flight and exits 0.

Behind nginx, under load, with other instances taking over: test_cluster.py.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI

from primetrade import health
from primetrade.server import Server, WorkerProcess
from tests import pgserver
from tests.helpers import API, PASSWORD

SECRET = "test-secret-key-0123456789abcdef0123456789"
HANG_GUARD_SECONDS = 20  # a stuck step fails the test instead of hanging the run


@pytest.fixture
def restore_readiness(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo the process-wide flag after the test."""
    monkeypatch.setattr(health, "_shutting_down", False)


@pytest.mark.usefixtures("restore_readiness")
async def test_ready_is_503_shutting_down_once_shutdown_begins(client: httpx.AsyncClient) -> None:
    assert (await client.get("/ready")).status_code == 200
    health.begin_shutdown()
    ready = await client.get("/ready")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    assert ready.json()["code"] == "shutting_down"
    assert (await client.get("/health")).status_code == 200, "liveness is unaffected"


@pytest.mark.usefixtures("restore_readiness")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_turns_readiness_off_and_stops_the_server(signum: int) -> None:
    server = Server(uvicorn.Config(FastAPI()))
    server.handle_exit(signum, None)
    assert health._shutting_down
    assert server.should_exit


def test_the_workers_of_a_multi_process_server_turn_readiness_off_too() -> None:
    config = uvicorn.Config(FastAPI(), workers=2)
    worker = WorkerProcess(config, [])  # built, not started
    assert isinstance(worker.server, Server)


async def test_a_started_server_keeps_its_start_up_objects_out_of_the_collectors_sight() -> None:
    config = uvicorn.Config(FastAPI(), host="127.0.0.1", port=0, lifespan="off")
    config.load()
    server = Server(config)
    server.lifespan = config.lifespan_class(config)  # what `serve` sets before `startup`
    gc.unfreeze()
    try:
        await server.startup()
        assert gc.get_freeze_count() > 0
    finally:
        await server.shutdown()
        gc.unfreeze()


# --- A real server process ------------------------------------------------------------------


@pytest.fixture(params=[1, 2], ids=["1-worker", "2-workers"])
def served(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """`primetrade serve` on SQLite and a free port (1 or 2 worker processes): the process,
    its port, its log. The metrics of several workers go to `tmp_path / "metrics"`."""
    port = pgserver.free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'served.db'}",
        "ENVIRONMENT": "test",
        "SECRET_KEY": SECRET,
        "LOG_LEVEL": "WARNING",
    }
    if request.param > 1:
        (tmp_path / "metrics").mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    log = tmp_path / "serve.log"
    command = [str(Path(sys.executable).parent / "primetrade"), "serve", "--port", str(port)]
    command += ["--workers", str(request.param)]
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603
            command, env=env, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_until(lambda: answers(port), process, log)
        yield process, port, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(int(HANG_GUARD_SECONDS / 0.05)):
        if condition():
            return
        assert process.poll() is None, f"serve exited early:\n{log.read_text()}"
        time.sleep(0.05)
    pytest.fail(f"condition never held:\n{log.read_text()}")


@pytest.mark.slow
def test_sigterm_finishes_the_request_in_flight_then_exits_0(
    served: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    process, port, log = served
    body = orjson.dumps({"email": "inflight@example.com", "password": PASSWORD})
    head = (
        f"POST {API}/auth/register HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_SECONDS) as request:
        request.sendall(head)
        replies = request.makefile("rb")
        # `100 Continue` comes when the app asks for the body: the request is in flight. (A
        # request whose headers the server has not read yet when it stops is not: uvicorn
        # closes that connection, and a proxy retries it elsewhere if it is idempotent.)
        assert replies.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert replies.readline() == b"\r\n"
        process.send_signal(signal.SIGTERM)
        wait_until(lambda: refuses(port), process, log)  # no new connections from now on
        request.sendall(body)
        response = replies.read()  # the server closes the connection after answering
    status_line = response.split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 201 Created", response
    assert b"connection: close" in response.lower()
    assert process.wait(timeout=HANG_GUARD_SECONDS) == 0, log.read_text()


def workers_of(process: subprocess.Popen[bytes]) -> set[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    return {int(pid) for pid in children if b"spawn_main" in _command_line(int(pid))}


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def live_gauge_files(folder: Path, pid: int) -> list[Path]:
    return sorted(folder.glob(f"gauge_live*_{pid}.db"))


@pytest.mark.slow
@pytest.mark.parametrize("served", [2], indirect=True, ids=["2-workers"])
def test_a_worker_that_dies_is_replaced_and_its_live_gauges_leave_metrics(
    served: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    process, port, log = served
    folder = log.parent / "metrics"
    wait_until(lambda: len(workers_of(process)) == 2, process, log)
    victim = min(workers_of(process))
    wait_until(lambda: bool(live_gauge_files(folder, victim)), process, log)
    os.kill(victim, signal.SIGKILL)
    wait_until(
        lambda: victim not in workers_of(process) and len(workers_of(process)) == 2, process, log
    )
    wait_until(lambda: not live_gauge_files(folder, victim), process, log)
    wait_until(lambda: answers(port), process, log)
    scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=HANG_GUARD_SECONDS).text
    assert "http_requests_in_flight" in scraped
