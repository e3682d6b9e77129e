"""Probes, Prometheus's scrape config and the Grafana dashboard agree with the app.

Every path a probe, healthcheck or scraper of the deployment files requests answers 200; the
scrape targets are the compose services on the image's port; each metric name and label the
dashboard queries (and each of its variables) is on a live `/metrics` after some traffic.
No container engine, Prometheus or Grafana is needed.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import asgi_client
from tests.deploy.support import (
    API_SERVICES,
    DEPLOY,
    dockerfile_port,
    prometheus_config,
    services,
)

TARGET_LABELS = frozenset({"instance", "job"})
GRAFANA_VARIABLES = frozenset({"__rate_interval", "__interval", "__range"})
PROMQL_WORDS = frozenset({"by", "without", "on", "ignoring", "and", "or", "unless", "bool"})


# --- The app, its routes and its metrics ----------------------------------------------------


@pytest.fixture(scope="module")
async def exposition(deployed_app: FastAPI) -> dict[str, frozenset[str]]:
    """Every sample name on /metrics after some traffic, with its label names."""
    async with asgi_client(deployed_app) as client:
        for path in ("/health", "/ready", "/api/v1/tasks", "/api/v1/tasks"):
            await client.get(path)
        response = await client.get("/metrics")
    assert response.status_code == 200
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(names) for name, names in labels.items()}


def test_every_probed_path_answers(route_status: dict[str, int]) -> None:
    assert route_status == dict.fromkeys(route_status, 200)
    assert {"/health", "/ready", "/metrics"} <= set(route_status)


# --- Prometheus -----------------------------------------------------------------------------


def target_labels() -> frozenset[str]:
    labels = set(TARGET_LABELS)
    for job in prometheus_config()["scrape_configs"]:
        for static in job.get("static_configs", []):
            labels |= set(static.get("labels", {}))
    return frozenset(labels)


def test_prometheus_scrapes_each_instance_directly(route_status: dict[str, int]) -> None:
    (job,) = [
        job for job in prometheus_config()["scrape_configs"] if job["job_name"] == "primetrade-api"
    ]
    assert job["metrics_path"] == "/metrics"
    assert route_status["/metrics"] == 200
    targets = {target for static in job["static_configs"] for target in static["targets"]}
    assert targets == {f"{name}:{dockerfile_port()}" for name in API_SERVICES}
    assert set(services()) >= {target.split(":")[0] for target in targets}


def test_prometheus_scrapes_the_workers_where_they_serve_metrics() -> None:
    (job,) = [
        job
        for job in prometheus_config()["scrape_configs"]
        if job["job_name"] == "primetrade-worker"
    ]
    (discovery,) = job["dns_sd_configs"]
    command = services()["worker"]["command"]
    assert discovery["names"] == ["worker"]
    assert command[command.index("--metrics-port") + 1] == str(discovery["port"])
    assert command[command.index("--metrics-host") + 1] == "0.0.0.0"  # noqa: S104
    prometheus_networks = set(services()["prometheus"]["networks"])
    assert prometheus_networks & set(services()["worker"]["networks"])


# --- Grafana --------------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DEPLOY / "grafana" / "primetrade.json").read_text())
    return document


def dashboard_expressions() -> list[str]:
    return [
        target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])
    ]


def promql_metrics_and_labels(expr: str) -> tuple[set[str], set[str]]:
    """Metric names and label names one PromQL expression uses (enough for these queries)."""
    text = re.sub(r'"[^"]*"', '""', expr)
    labels = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", " ".join(re.findall(r"\{[^}]*\}", text))))
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", text):
        labels |= {name.strip() for name in group.split(",") if name.strip()}
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b(?:by|without)\s*\([^)]*\)", " ", text)
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text)) - PROMQL_WORDS
    return names, labels


def test_dashboard_metrics_and_labels_exist(exposition: dict[str, frozenset[str]]) -> None:
    known_targets = target_labels()
    for expr in dashboard_expressions():
        names, labels = promql_metrics_and_labels(expr)
        assert names, expr
        missing = names - set(exposition)
        assert not missing, f"{expr}: not on /metrics: {missing}"
        available = set(known_targets).union(*(exposition[name] for name in names))
        assert labels <= available, f"{expr}: unknown labels {labels - available}"


def test_dashboard_variables(exposition: dict[str, frozenset[str]]) -> None:
    variables = {variable["name"]: variable for variable in dashboard()["templating"]["list"]}
    for variable in variables.values():
        if variable["type"] != "query":
            continue
        metric, label = re.fullmatch(  # type: ignore[union-attr]
            r"label_values\((\w+),\s*(\w+)\)", variable["query"]["query"]
        ).groups()
        assert label in exposition[metric] | target_labels(), variable["name"]
    used = set()
    for panel in dashboard()["panels"]:
        used |= set(re.findall(r"\$\{?(\w+)", json.dumps(panel)))
    assert used - GRAFANA_VARIABLES <= set(variables)
    assert variables["datasource"]["type"] == "datasource"


def test_dashboard_covers_rate_errors_latency_and_activity() -> None:
    exprs = dashboard_expressions()

    def has(pattern: str) -> bool:
        return any(re.search(pattern, expr) for expr in exprs)

    assert has(r"sum by \(route, method\) \(rate\(http_request_duration_seconds_count")
    assert has(r'status=~"5\.\."')
    assert has(r'status=~"4\.\."')
    for quantile in ("0.5", "0.95", "0.99"):
        assert has(rf"histogram_quantile\({quantile}, sum by \(le, route\)"), quantile
    assert has(r"http_requests_in_flight")
    assert has(r"tasks_created_total")
    assert has(r"sum by \(job_type, outcome\) \(rate\(job_duration_seconds_count")
    assert has(r"sum by \(job_type\) \(rate\(job_failures_total")
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
