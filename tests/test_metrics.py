"""/metrics across worker processes (kit/metrics.py), on the library's own files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from primetrade.kit.metrics import render

# A worker process that has counted something: the file it leaves is the library's own.
WORKER = """
from prometheus_client import Counter
Counter("demo_events_total", "Events.").inc(3)
"""


def samples(text: str) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_process_file_not_yet_sized_costs_the_scrape_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scrape while a worker starts (its file exists, still empty) answers for the others."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    subprocess.run(  # noqa: S603
        [sys.executable, "-c", WORKER],
        check=True,
        env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
    )
    (tmp_path / "counter_999999.db").touch()  # created, not yet sized
    (tmp_path / "gauge_live_999999.db").touch()

    body, content_type = render()

    assert content_type.startswith("text/plain")
    assert samples(body.decode())["demo_events_total"] == 3
