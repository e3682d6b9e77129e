"""wrk runs through bench/wrk/api.lua, and how busy the rest of the machine was meanwhile."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from harness.services import all_pids, group_members, proc_stat

WRK = "/usr/bin/wrk"
SCRIPT = Path(__file__).resolve().parent.parent / "wrk" / "api.lua"
RESULT_PREFIX = "BENCH_JSON "
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class LoadSpec:
    """One scenario: what to request and how (see bench/wrk/api.lua)."""

    name: str
    base_url: str
    path: str
    method: str = "GET"
    token: str | None = None
    body: str | None = None
    ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class WrkSettings:
    threads: int
    connections: int
    duration: int
    timeout: int
    log_dir: Path


@dataclass(frozen=True)
class WrkResult:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    statuses: dict[str, int]
    other_cores: float = 0.0
    server_ms: float = 0.0  # server CPU per request (all requests of the measurement)
    postgres_ms: float = 0.0  # PostgreSQL backends' CPU per request, likewise
    notes: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors


# --- wrk -------------------------------------------------------------------------------------


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def start_wrk(spec: LoadSpec, settings: WrkSettings, duration: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BENCH_METHOD": spec.method,
        "BENCH_PATH": spec.path,
        "BENCH_TOKEN": spec.token or "",
        "BENCH_BODY": spec.body or "",
        "BENCH_IDS": ",".join(spec.ids),
        "BENCH_THREADS": str(settings.threads),
    }
    command = [
        WRK,
        f"-t{settings.threads}",
        f"-c{settings.connections}",
        f"-d{duration}s",
        f"--timeout={settings.timeout}s",
        "-s",
        str(SCRIPT),
        spec.base_url + "/",
    ]
    out = (settings.log_dir / f"wrk-{_slug(spec.name)}.txt").open("wb")
    with out:
        return subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def finish_wrk(
    process: subprocess.Popen[bytes], spec: LoadSpec, settings: WrkSettings
) -> WrkResult:
    """Wait for a wrk started by `start_wrk` and read the line api.lua's `done` printed."""
    try:
        process.wait(timeout=settings.duration + settings.timeout + 60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        raise RuntimeError(f"wrk for {spec.name!r} did not finish") from None
    output = (settings.log_dir / f"wrk-{_slug(spec.name)}.txt").read_text(errors="replace")
    for line in output.splitlines():
        if line.startswith(RESULT_PREFIX):
            return _parse(spec.name, orjson.loads(line[len(RESULT_PREFIX) :]))
    raise RuntimeError(f"wrk for {spec.name!r} printed no result:\n{output[-2000:]}")


def _parse(name: str, data: Mapping[str, object]) -> WrkResult:
    def number(key: str) -> float:
        value = data[key]
        assert isinstance(value, int | float)
        return float(value)

    socket_errors = sum(
        int(number(key)) for key in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    statuses = data["statuses"]
    assert isinstance(statuses, dict)
    return WrkResult(
        name=name,
        requests=int(number("requests")),
        seconds=number("duration_us") / 1e6,
        p50_ms=number("p50_us") / 1000,
        p99_ms=number("p99_us") / 1000,
        non2xx=int(number("non2xx")),
        socket_errors=socket_errors,
        statuses={str(k): int(v) for k, v in sorted(statuses.items())},
    )


# --- what else the machine was doing ----------------------------------------------------------


@dataclass(frozen=True)
class CpuSample:
    at: float
    busy: float  # seconds of CPU used by everything since boot
    own: float  # this process and its reaped children (wrk)
    servers: dict[int, float]  # pid → CPU seconds, the servers' process groups
    postgres: dict[int, float]  # pid → CPU seconds, backends serving our databases


@dataclass(frozen=True)
class CpuUse:
    """CPU used between two samples, in seconds."""

    elapsed: float
    total: float
    own: float
    servers: float
    postgres: float

    @property
    def other_cores(self) -> float:
        """Cores' worth of CPU that processes outside this run used meanwhile."""
        others = self.total - self.own - self.servers - self.postgres
        return max(0.0, others / self.elapsed) if self.elapsed > 0 else 0.0


def _busy_seconds() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS


def _cpu_seconds(pid: int) -> float:
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS if fields else 0.0


def _backends_of(databases: Iterable[str]) -> list[int]:
    """PostgreSQL backends serving our databases (their title names the database)."""
    needles = [f" {name} ".encode() for name in databases]
    found = []
    for pid in all_pids():
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if title.startswith(b"postgres:") and any(needle in title for needle in needles):
            found.append(pid)
    return found


def cpu_sample(pgids: Iterable[int], databases: Iterable[str]) -> CpuSample:
    times = os.times()
    servers = [pid for pgid in pgids for pid in group_members(pgid)]
    return CpuSample(
        at=time.monotonic(),
        busy=_busy_seconds(),
        own=times.user + times.system + times.children_user + times.children_system,
        servers={pid: _cpu_seconds(pid) for pid in servers},
        postgres={pid: _cpu_seconds(pid) for pid in _backends_of(databases)},
    )


def _delta(start: dict[int, float], end: dict[int, float]) -> float:
    # Per process, so that one that exits meanwhile does not count against the others.
    return sum(max(0.0, seconds - start.get(pid, 0.0)) for pid, seconds in end.items())


def cpu_use(start: CpuSample, end: CpuSample) -> CpuUse:
    return CpuUse(
        elapsed=end.at - start.at,
        total=end.busy - start.busy,
        own=end.own - start.own,
        servers=_delta(start.servers, end.servers),
        postgres=_delta(start.postgres, end.postgres),
    )
