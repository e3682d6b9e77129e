"""Redis for the tests: the shared server, and private throwaway servers to stop and start.

The shared server is found at TEST_REDIS_URL (default `redis://127.0.0.1:6379/0`). Tests keep
to a random key prefix and delete only their own keys, so runs never collide and the shared
server is never flushed or stopped. Without a reachable Redis the tests that need it are
skipped and say why, except under CI (CI=true), where that is a failure instead. Tests that
take Redis away mid-way start a private `redis-server` on a free port.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.pgserver import free_port

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
START_ATTEMPTS = 200


def shared_redis_url() -> str:
    """The shared Redis, or a skip (a failure under CI) saying why it cannot be used."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        if IN_CI:
            pytest.fail(f"CI needs Redis at {REDIS_URL}: {exc}")
        pytest.skip(f"SKIPPED Redis tests: Redis at {REDIS_URL} unreachable: {exc}")
    finally:
        client.close()
    return REDIS_URL


def private_prefix() -> Iterator[str]:
    """A key prefix of one's own on the shared Redis; its keys are deleted afterwards."""
    prefix = f"primetrade-test-{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*", count=500))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def unavailable_reason() -> str | None:
    return None if shutil.which("redis-server") else "no `redis-server` on PATH"


class PrivateRedis:
    """A `redis-server` on a free loopback port, without persistence; stop() and start() again."""

    def __init__(self) -> None:
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, unavailable_reason()
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        self._process = subprocess.Popen(  # noqa: S603 - a fixed binary and arguments
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_until_it_answers()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def _wait_until_it_answers(self) -> None:
        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        try:
            for _ in range(START_ATTEMPTS):
                try:
                    client.ping()
                    return
                except (redis.RedisError, OSError):
                    time.sleep(0.05)
            raise RuntimeError(f"redis-server on port {self.port} did not start")
        finally:
            client.close()
