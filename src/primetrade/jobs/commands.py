"""What `primetrade worker` and `primetrade scheduler` run."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from pathlib import Path

from primetrade.settings import Settings

WORKER_BROKER = "primetrade.jobs.worker:broker"


def run_worker(
    settings: Settings, *, processes: int, threads: int, metrics_host: str, metrics_port: int
) -> int:
    """Run Dramatiq's worker processes on BROKER_URL; the exit status of the supervisor."""
    if settings.broker_url is None:
        raise ValueError(
            "BROKER_URL is not set; without a broker, `primetrade serve` runs the jobs"
        )
    # Before prometheus_client is first imported: the forked worker processes inherit the
    # choice and write their samples here, which the supervisor serves added up.
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="primetrade-worker-")
    from dramatiq.cli import main, make_argument_parser
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    if metrics_port:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        start_http_server(metrics_port, addr=metrics_host, registry=registry)
    arguments = [WORKER_BROKER, "--processes", str(processes), "--threads", str(threads)]
    status: int = main(make_argument_parser().parse_args(arguments))  # type: ignore[no-untyped-call]
    return status


async def run_scheduler(settings: Settings, *, heartbeat: Path | None = None) -> None:
    """Fire the periodic jobs until SIGTERM or SIGINT."""
    from primetrade.jobs.registry import load_all
    from primetrade.jobs.scheduler import Scheduler, schedule_for
    from primetrade.kit.db import create_engine, create_sessionmaker

    load_all()
    engine = create_engine(settings)
    scheduler = Scheduler(create_sessionmaker(engine), schedule_for(settings), heartbeat=heartbeat)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, scheduler.request_stop)
    try:
        await scheduler.run()
    finally:
        await engine.dispose()
