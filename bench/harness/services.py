"""The processes a run starts (each in its own process group) and its PostgreSQL databases."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import redis.asyncio
from prometheus_client.parser import text_string_to_metric_families

LOOPBACK = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_USER = "postgres"
STOP_GRACE_SECONDS = 25.0
POLL_SECONDS = 0.25


def free_port() -> int:
    """A TCP port on the loopback interface that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def postgres_dsn(database: str, driver: str = "postgresql") -> str:
    return f"{driver}://{POSTGRES_USER}@{LOOPBACK}:{POSTGRES_PORT}/{database}"


# --- processes -------------------------------------------------------------------------------


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state is [0], pgrp is [2])."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def all_pids() -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`."""
    members = []
    for pid in all_pids():
        fields = proc_stat(pid)
        if fields and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(pid)
    return members


@dataclass
class Service:
    """A server started by the run, leader of its own process group."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pgid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the whole group, SIGKILL to whatever is left after the grace period."""
        if self.process.poll() is None:
            _signal_group(self.pgid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                _signal_group(self.pgid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # Workers can outlive their master: the group must be empty before we move on.
        if group_members(self.pgid):
            _signal_group(self.pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def start_service(
    name: str,
    command: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str],
    cwd: Path,
    log_dir: Path,
) -> Service:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Service(name=name, process=process, port=port, log_path=log_path)


def wait_http_ok(service: Service, path: str, timeout: float = 90.0) -> None:
    """Poll `path` until it answers 200; fail early if the server exits."""
    deadline = time.monotonic() + timeout
    url = service.base_url + path
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited early:\n{service.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        time.sleep(POLL_SECONDS)
    raise RuntimeError(
        f"{service.name}: {path} not 200 after {timeout:.0f} s\n{service.log_tail()}"
    )


# --- databases -------------------------------------------------------------------------------


def _quoted(database: str) -> str:
    if not database.replace("_", "").isalnum():
        raise ValueError(f"unexpected database name {database!r}")
    return f'"{database}"'


async def _admin_execute(*statements: str) -> None:
    conn = await asyncpg.connect(postgres_dsn("postgres"), timeout=10)
    try:
        for statement in statements:
            await conn.execute(statement, timeout=60)
    finally:
        await conn.close()


async def recreate_database(database: str) -> None:
    name = _quoted(database)
    await _admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}")


async def drop_database(database: str) -> None:
    await _admin_execute(f"DROP DATABASE IF EXISTS {_quoted(database)} WITH (FORCE)")


async def run_sql_script(database: str, sql: str) -> None:
    """Run a multi-statement script (simple query protocol) in `database`."""
    conn = await asyncpg.connect(postgres_dsn(database), timeout=10)
    try:
        await conn.execute(sql, timeout=60)
    finally:
        await conn.close()


async def server_version() -> str:
    conn = await asyncpg.connect(postgres_dsn("postgres"), timeout=10)
    try:
        version: str = await conn.fetchval("SHOW server_version")
        return version
    finally:
        await conn.close()


# --- Redis and metrics ---------------------------------------------------------------------


async def delete_redis_prefix(url: str, prefix: str) -> None:
    """Remove every key this run wrote under `prefix` (the shared server keeps the rest)."""
    client = redis.asyncio.Redis.from_url(url)
    try:
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            await client.delete(key)
    finally:
        await client.aclose()


async def cache_counts(base_url: str, cache: str) -> tuple[int, int]:
    """(hits, misses) of one cache so far, read from the product's /metrics."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
        text = (await client.get("/metrics")).text
    counts = {"hit": 0, "miss": 0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "cache_requests_total" and sample.labels.get("cache") == cache:
                result = sample.labels.get("result", "")
                if result in counts:
                    counts[result] += int(sample.value)
    return counts["hit"], counts["miss"]
