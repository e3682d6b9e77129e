"""The run's conditions and results as Markdown."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harness.loadgen import WrkResult

RATIO_TARGET = 0.5
LIST_P99_TARGET_MS = 60.0
STORM_TARGET = 3.0
NOISY_CORES = 0.25  # other processes using more than this during a scenario: say so


@dataclass(frozen=True)
class Conditions:
    postgres_version: str
    threads: int
    connections: int
    duration: int
    workers: int
    sqlite_workers: int | None
    load_before: str


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def header(conditions: Conditions) -> list[str]:
    sqlite = f"{conditions.sqlite_workers} worker(s)" if conditions.sqlite_workers else "skipped"
    return [
        "# PrimeTrade Tasks benchmark",
        "",
        f"- date (UTC): {datetime.now(UTC):%Y-%m-%d %H:%M:%S}",
        f"- nproc: {len(os.sched_getaffinity(0))}",
        f"- CPU: {cpu_model()}",
        f"- PostgreSQL: {conditions.postgres_version} (127.0.0.1)",
        f"- load: wrk -t{conditions.threads} -c{conditions.connections} "
        f"-d{conditions.duration}s per scenario; servers with {conditions.workers} workers "
        f"(SQLite: {sqlite})",
        f"- load average before / after: {conditions.load_before} / {load_average()}",
        "",
    ]


def _cell(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def results_table(results: list[WrkResult]) -> list[str]:
    lines = [
        "| scenario | requests/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        errors = f"**{r.errors} ⚠**" if r.errors else "0"
        lines.append(f"| {r.name} | {_cell(r.rps)} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {errors} |")
    return [*lines, ""]


def details(results: list[WrkResult]) -> list[str]:
    lines = [
        "| scenario | requests | statuses | socket errors | server CPU ms/req "
        "| PostgreSQL CPU ms/req | other CPU (cores) |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        statuses = ", ".join(f"{code}×{count}" for code, count in r.statuses.items()) or "—"
        noisy = " (noisy)" if r.other_cores > NOISY_CORES else ""
        lines.append(
            f"| {r.name} | {r.requests} | {statuses} | {r.socket_errors} | "
            f"{r.server_ms:.2f} | {r.postgres_ms:.2f} | {r.other_cores:.2f}{noisy} |"
        )
    notes = [f"- {r.name}: {note}" for r in results for note in r.notes]
    legend = [
        "CPU per request: CPU time of the server processes (or of the PostgreSQL backends "
        "serving the run's databases) over all requests measured at the same time; it "
        "depends much less on what else runs on the machine than requests/s does. Other "
        f"CPU: what processes outside the run used meanwhile (noisy above {NOISY_CORES}).",
    ]
    return [*lines, "", *legend, "", *notes, *([""] if notes else [])]


def ratio_line(ceiling: WrkResult, product_list: WrkResult) -> str:
    ratio = product_list.rps / ceiling.rps if ceiling.rps else 0.0
    verdicts = [
        "ok" if ratio >= RATIO_TARGET else "BELOW TARGET",
        "ok" if product_list.p99_ms < LIST_P99_TARGET_MS else "ABOVE TARGET",
    ]
    return (
        f"list/ceiling ratio: {ratio:.2f} (target ≥ {RATIO_TARGET}), "
        f"list p99 {product_list.p99_ms:.1f} ms (target < {LIST_P99_TARGET_MS:.0f} ms)"
        f" — {verdicts[0]}, {verdicts[1]}"
    )


def cpu_line(ceiling: WrkResult, product_list: WrkResult) -> str:
    factor = product_list.server_ms / ceiling.server_ms if ceiling.server_ms else 0.0
    return (
        f"server CPU per list request: {product_list.server_ms:.2f} ms vs the ceiling's "
        f"{ceiling.server_ms:.2f} ms ({factor:.1f}×)"
    )


def storm_line(normal: WrkResult, storm: WrkResult) -> str:
    factor = storm.p99_ms / normal.p99_ms if normal.p99_ms else 0.0
    verdict = "ok" if factor <= STORM_TARGET and not storm.errors else "ABOVE TARGET"
    if factor <= STORM_TARGET and storm.errors:
        verdict = "errors during the storm"
    return (
        f"login storm: list p99 {storm.p99_ms:.1f} ms = {factor:.1f} × normal "
        f"(target ≤ {STORM_TARGET:.0f}×) — {verdict}"
    )


WARM_TARGET = 1.0  # a warm-cache list reaches the ceiling's requests/s
PROXY_COST_TARGET = 0.25  # nginx + N instances lose at most this share of one instance's


def scaleout_lines(
    ceiling: WrkResult,
    warm: WrkResult,
    cold: WrkResult,
    single: WrkResult,
    behind: WrkResult,
    hits: int,
    misses: int,
) -> list[str]:
    ratio = warm.rps / ceiling.rps if ceiling.rps else 0.0
    cost = 1 - behind.rps / single.rps if single.rps else 1.0
    lookups = hits + misses
    hit_ratio = f"{hits / lookups:.1%} ({hits:,} hits, {misses:,} misses)" if lookups else "n/a"
    return [
        f"warm-cache list/ceiling ratio: {ratio:.2f} (target ≥ {WARM_TARGET:.1f}) — "
        + ("ok" if ratio >= WARM_TARGET else "BELOW TARGET"),
        "",
        f"cache off → warm: {cold.rps:,.0f} → {warm.rps:,.0f} req/s; "
        f"server CPU {cold.server_ms:.2f} → {warm.server_ms:.2f} ms/req; "
        f"task-list cache hit ratio during the warm runs: {hit_ratio}",
        "",
        f"nginx + instances vs the warm instance direct: {behind.rps:,.0f} vs "
        f"{single.rps:,.0f} req/s, "
        f"cost {cost:.0%} (target ≤ {PROXY_COST_TARGET:.0%}) — "
        + ("ok" if cost <= PROXY_COST_TARGET else "ABOVE TARGET"),
        "",
    ]
