"""Readers for the deployment files, shared by the modules of this package.

Dockerfile, compose.yaml and deploy/ (nginx, Kubernetes, Prometheus, Grafana) are read, never
run in a container engine, and held against the app itself. These helpers parse them, parse
arguments exactly as the CLI would, and serve the app that the probes and scrapers call.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import yaml

import primetrade.cli
from primetrade.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
NGINX_DIR = DEPLOY / "nginx"
SETTING_NAMES = frozenset(name.upper() for name in Settings.model_fields)
SECRET = "deploy-test-secret-0123456789abcdef0123456789"
API_SERVICES = ("api1", "api2", "api3")


# --- Readers --------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(ROOT / "compose.yaml")
    return document


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def k8s_resources() -> list[str]:
    resources: list[str] = load_yaml(K8S / "kustomization.yaml")["resources"]
    return resources


def k8s_objects() -> dict[str, dict[str, Any]]:
    objects: dict[str, dict[str, Any]] = {}
    for name in k8s_resources():
        for document in yaml.safe_load_all((K8S / name).read_text()):
            assert document["kind"] not in objects, f"two {document['kind']} objects"
            objects[document["kind"]] = document
    return objects


def pod_spec(kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = k8s_objects()[kind]["spec"]["template"]["spec"]
    return spec


def only_container(kind: str) -> dict[str, Any]:
    containers = pod_spec(kind)["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [value for key, value in self.instructions if key == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"the {self.name or self.base} stage has no {keyword}"
        return found[-1]


def dockerfile_stages() -> list[Stage]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: list[Stage] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        keyword, _, value = line.strip().partition(" ")
        keyword, value = keyword.upper(), value.strip()
        if keyword == "FROM":
            base, _, name = value.partition(" AS ")
            stages.append(Stage(base.strip(), name.strip() or None))
        else:
            stages[-1].instructions.append((keyword, value))
    return stages


def cli_params(args: list[str]) -> dict[str, Any]:
    """Parse `args` (after the `primetrade` entry point) exactly as the CLI would."""
    group: Any = typer.main.get_command(primetrade.cli.cli)
    name, *rest = args
    command = group.commands.get(name)
    assert command is not None, f"`primetrade {name}` is not a command"
    params: dict[str, Any] = command.make_context(name, list(rest)).params
    return params


def graceful_shutdown_seconds() -> float:
    """uvicorn's `timeout_graceful_shutdown` as `primetrade serve` passes it."""
    tree = ast.parse(inspect.getsource(primetrade.cli))
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "timeout_graceful_shutdown":
            if isinstance(node.value, ast.Constant):
                return float(node.value.value)
            if isinstance(node.value, ast.Name):
                return float(getattr(primetrade.cli, node.value.id))
            if isinstance(node.value, ast.Attribute):
                return float(Settings.model_fields[node.value.attr].default)
    pytest.fail("cli.py passes no timeout_graceful_shutdown to uvicorn")


def interpolated(value: str, **values: str) -> str:
    """Compose's `${NAME}`, `${NAME:?error}` and `${NAME:-default}` filled from `values`.

    A name without a default must be given (as the person running compose must).
    """

    def one(match: re.Match[str]) -> str:
        name, operator, default = match.groups()
        if name in values:
            return values[name]
        assert operator == ":-", f"${{{name}}} has no default and no value"
        return str(default)

    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", one, value)


def compose_app_environment(service: dict[str, Any]) -> dict[str, str]:
    fake = {
        "SECRET_KEY": SECRET,
        "POSTGRES_PASSWORD": "pw",
        "REPLICATION_PASSWORD": "rpw",
        "RABBITMQ_PASSWORD": "mqpw",
    }
    return {key: interpolated(str(value), **fake) for key, value in service["environment"].items()}


def settings_from(environment: dict[str, str]) -> Settings:
    values = {name.lower(): value for name, value in environment.items()}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def nginx_text(name: str = "nginx.conf") -> str:
    """The config without comments."""
    return re.sub(r"#[^\n]*", "", (NGINX_DIR / name).read_text())


def nginx_directives(name: str, text: str | None = None) -> list[str]:
    source = nginx_text() if text is None else text
    return [m.group(1).strip() for m in re.finditer(rf"(?m)^\s*{name}\s+([^;]*);", source)]


def dockerfile_port() -> int:
    return int(dockerfile_stages()[-1].last("EXPOSE"))


def prometheus_config() -> dict[str, Any]:
    config: dict[str, Any] = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    return config


# --- The app and the paths the deployment probes --------------------------------------------


def probed_paths() -> set[str]:
    """Every path a probe, healthcheck or scraper of the deployment files requests."""
    paths = {urlsplit(url).path for url in healthcheck_urls()}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        paths.add(only_container("Deployment")[probe]["httpGet"]["path"])
    paths |= {job.get("metrics_path", "/metrics") for job in prometheus_config()["scrape_configs"]}
    return paths


def healthcheck_urls() -> list[str]:
    texts = [dockerfile_stages()[-1].last("HEALTHCHECK")]
    texts += [" ".join(services()[name]["healthcheck"]["test"]) for name in API_SERVICES]
    return [url for text in texts for url in re.findall(r"http://[^'\"\s]+", text)]
