"""`make cluster`, `make cluster-status` and `make cluster-down` as a developer runs them.

Each step is its own process (scripts/cluster.py), so `down` finds what `up` started from the
state folder alone, and stops exactly that. Free ports instead of the fixed ones, so a
developer's own cluster (or anything else on 8080) is never touched.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.cluster import Cluster, missing_tools
from tests.conftest import IN_CI
from tests.supervisor import Record

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "cluster.py"
STEP_TIMEOUT_SECONDS = 180


def run(command: str, state: Path) -> subprocess.CompletedProcess[str]:
    arguments = [sys.executable, str(SCRIPT), command, "--state", str(state), "--free-ports"]
    return subprocess.run(  # noqa: S603 - our own script
        arguments, capture_output=True, text=True, timeout=STEP_TIMEOUT_SECONDS, check=False
    )


@pytest.mark.slow
def test_up_status_and_down_stop_exactly_what_was_started() -> None:
    missing = missing_tools()
    if missing:
        reason = f"the cluster needs: {', '.join(missing)}"
        if IN_CI:
            pytest.fail(f"CI: {reason}")
        pytest.skip(f"SKIPPED make cluster: {reason}")
    # Not under pytest's tmp_path, whose folders only root may enter: PostgreSQL runs as
    # `postgres`. `down` deletes it.
    state = Path(tempfile.mkdtemp(prefix="primetrade-make-cluster-"))
    records: list[Record] = []
    try:
        started = run("up", state)
        assert started.returncode == 0, started.stderr + started.stdout
        cluster = Cluster.load(state)
        assert f"{cluster.url}/api/v1" in started.stdout
        assert httpx.get(f"{cluster.url}/ready", timeout=10).status_code == 200
        status = run("status", state)
        assert status.returncode == 0, status.stderr
        parts = dict(line.split() for line in status.stdout.strip().splitlines())
        assert set(parts.values()) == {"up"}, status.stdout
        assert {"nginx", "redis", "postgres-primary", "postgres-replica"} <= set(parts)
        records = list(cluster.records.values())
    finally:
        stopped = run("down", state)
    assert stopped.returncode == 0, stopped.stderr
    assert not state.exists()
    assert records, "up recorded no process"
    # (Gone means exited: a zombie not yet reaped by init counts as gone.)
    assert [record.pid for record in records if record.alive()] == []
    assert run("status", state).stdout.strip() == f"no cluster in {state.resolve()}"
