"""Named background processes: start, watch, signal and stop them, and remember them.

A pid alone is not an identity (the kernel reuses it once its process is gone), so each
record also keeps the process's start time: a process is the one recorded only while both
match, and stopping a record never reaches a program that merely inherited its pid. Records
are plain data, so another process can load them and stop what this one started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

STOP_TIMEOUT = 30.0


class SupervisorError(RuntimeError):
    """A supervised process did not start, or did not stop."""


@dataclass
class Record:
    """One started process: its pid and kernel start time."""

    pid: int
    started: int

    @classmethod
    def of(cls, pid: int) -> Record:
        return cls(pid, start_time(pid) or 0)

    def alive(self) -> bool:
        return start_time(self.pid) == self.started


class Supervisor:
    """Processes by name, each logging to `<logs>/<name>.log` and running from `cwd`."""

    def __init__(
        self,
        logs: Path,
        cwd: Path,
        records: dict[str, Record],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.logs, self.cwd, self.records, self._on_change = logs, cwd, records, on_change
        # Handles of the processes started by this object: they are waited for through these,
        # or `subprocess` would reap them behind our back and lose their exit status.
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        """Start `command` as `name` (replacing a record of that name that has ended)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        with self.log(name).open("ab") as sink:
            process = subprocess.Popen(  # noqa: S603
                command,
                env=env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C in the terminal that started it reaches neither
                # its process group nor the servers; `stop` does.
                start_new_session=True,
            )
        self._children[name] = process
        self.records[name] = Record.of(process.pid)
        self._on_change()

    def running(self, name: str) -> bool:
        child = self._children.get(name)
        if child is not None:
            # Our own child: only waiting for it tells "exited" apart from "a zombie".
            return child.poll() is None
        record = self.records.get(name)
        return record is not None and record.alive()

    def signal(self, name: str, signum: int) -> None:
        if self.running(name):
            os.kill(self.records[name].pid, signum)

    def wait(self, name: str, timeout: float = STOP_TIMEOUT) -> int:
        """The exit status of `name` (started by this object) once it has ended."""
        try:
            return self._children[name].wait(timeout)
        except subprocess.TimeoutExpired:
            raise SupervisorError(f"{name} still runs after {timeout:.0f} s") from None

    def stop(self, name: str) -> None:
        """SIGTERM, then SIGKILL if it lingers; then forget it."""
        if self.running(name):
            self.signal(name, signal.SIGTERM)
            if not self._gone(name, STOP_TIMEOUT):
                self.signal(name, signal.SIGKILL)
                self._gone(name, STOP_TIMEOUT)
        self.records.pop(name, None)
        self._children.pop(name, None)
        self._on_change()

    def stop_all(self) -> None:
        """Stop every process, the last started first."""
        for name in reversed(list(self.records)):
            self.stop(name)

    def wait_for_port(self, name: str, port: int, timeout: float) -> None:
        """Until `name` listens on `port` on loopback; fails early if it exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_open(port):
                return
            if not self.running(name):
                raise SupervisorError(f"{name} exited while starting:\n{self.tail(name)}")
            time.sleep(0.1)
        raise SupervisorError(f"{name} did not listen on {port} in {timeout:.0f} s")

    def wait_ready(self, name: str, url: str, timeout: float) -> None:
        """Wait until `name`, still running, answers GET `url`/ready with 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running(name):
                raise SupervisorError(f"{name} exited while starting:\n{self.tail(name)}")
            if _answers_ready(url):
                return
            time.sleep(0.1)
        raise SupervisorError(f"{name} was not ready in {timeout:.0f} s:\n{self.tail(name)}")

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.log(name)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _gone(self, name: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running(name):
                return True
            time.sleep(0.05)
        return False


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces; the fields after it are fixed.
    state, *rest = stat.rsplit(")", 1)[1].split()
    return None if state in {"Z", "X"} else int(rest[18])


def _answers_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ready", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:  # refused, reset, timed out, or an HTTP error status such as 503
        return False


def port_open(port: int) -> bool:
    """Whether something accepts connections on loopback `port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
