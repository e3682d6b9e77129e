"""Prometheus metrics, safe for several worker processes.

When `PROMETHEUS_MULTIPROC_DIR` is set (the CLI sets it for `serve --workers N`), each process
writes its samples to that folder and `/metrics` adds them up across processes.
"""

from __future__ import annotations

import glob
import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REQUESTS_IN_FLIGHT = Gauge(
    "http_requests_in_flight",
    "HTTP requests being answered right now.",
    multiprocess_mode="livesum",
)
RATE_LIMITED = Counter(
    "rate_limited_requests_total", "Requests refused by a rate limit.", ["policy"]
)
CACHE_REQUESTS = Counter(
    "cache_requests_total",
    "Cache lookups by cache and result (hit, miss, error: the store failed and was bypassed).",
    ["cache", "result"],
)
REDIS_ERRORS = Counter(
    "redis_errors_total", "Redis calls that failed, by component.", ["component"]
)
REDIS_OUTAGES = Counter(
    "redis_outages_total", "Times Redis became unusable for a component.", ["component"]
)

# Every worker probes the replicas itself; the newest reading is the one to show.
REPLICA_LAG = Gauge(
    "db_replica_lag_seconds",
    "How far a read replica's data is behind the primary (0 once it has replayed all the "
    "primary had written at the last probe; +Inf while behind with nothing replayed yet).",
    ["replica"],
    multiprocess_mode="mostrecent",
)
REPLICA_UP = Gauge(
    "db_replica_up",
    "1 when a read replica answered its last probe, else 0.",
    ["replica"],
    multiprocess_mode="mostrecent",
)
REPLICA_FALLBACKS = Counter(
    "db_replica_fallbacks_total",
    "Reads moved to the primary in mid-request because a replica failed under them.",
    ["replica"],
)


class _ProcessFilesCollector(multiprocess.MultiProcessCollector):
    """The library's collector, leaving out files a process has created but not yet sized.

    prometheus_client creates a process's `.db` file and sizes it a moment later; a scrape in
    between (a worker starting, or the replacement of one that died) reads 0 bytes and the
    whole merge fails, every process's samples with it (client_python#1199, still open). Such
    a file holds no samples yet, so leaving it out loses nothing; a process killed in that
    moment leaves it behind for good, which would otherwise fail every later scrape.
    """

    def collect(self) -> Any:
        path = os.path.join(self._path, "*.db")
        return self.merge([f for f in glob.glob(path) if _sized(f)], accumulate=True)  # type: ignore[no-untyped-call]


def _sized(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except FileNotFoundError:  # its process was marked dead and the file removed meanwhile
        return False


def render() -> tuple[bytes, str]:
    """The exposition text for every process of this instance."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _ProcessFilesCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
