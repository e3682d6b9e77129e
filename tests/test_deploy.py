"""The deployment files agree with the code.

Dockerfile, compose.yaml, deploy/ (nginx, Kubernetes, Prometheus, Grafana) are read and held
against the app itself: setting names against `Settings`, probe paths against the routes,
ports and arguments against the CLI, metric names and labels against a live `/metrics`, and
the nginx config against a real nginx (`nginx -t`, then a run in front of stub upstreams).
No container engine is needed.
"""

from __future__ import annotations

import ast
import inspect
import ipaddress
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import typer
import yaml
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

import primetrade.cli
from primetrade.app import create_app
from primetrade.migrations import upgrade
from primetrade.settings import Settings
from tests.conftest import IN_CI, asgi_client, make_settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
NGINX_DIR = DEPLOY / "nginx"
SETTING_NAMES = frozenset(name.upper() for name in Settings.model_fields)
SECRET = "deploy-test-secret-0123456789abcdef0123456789"
API_SERVICES = ("api1", "api2", "api3")
APP_IMAGE = "primetrade:local"
TARGET_LABELS = frozenset({"instance", "job"})
GRAFANA_VARIABLES = frozenset({"__rate_interval", "__interval", "__range"})
PROMQL_WORDS = frozenset({"by", "without", "on", "ignoring", "and", "or", "unless", "bool"})
STARTUP_GUARD_SECONDS = 10  # polling bound for nginx (listening, logging); never asserted on


# --- Readers --------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(ROOT / "compose.yaml")
    return document


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def app_services() -> dict[str, Any]:
    return {name: svc for name, svc in services().items() if svc.get("image") == APP_IMAGE}


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


def env_pairs(instruction: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in shlex.split(instruction))


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


def seconds(value: str | int) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m)?", str(value))
    assert match, f"{value!r} is not a duration"
    number, unit = int(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1, "m": 60}[unit]


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


def settings_from(environment: dict[str, str]) -> Settings:
    values = {name.lower(): value for name, value in environment.items()}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def compose_app_environment(service: dict[str, Any]) -> dict[str, str]:
    fake = {
        "SECRET_KEY": SECRET,
        "POSTGRES_PASSWORD": "pw",
        "REPLICATION_PASSWORD": "rpw",
        "RABBITMQ_PASSWORD": "mqpw",
    }
    return {key: interpolated(str(value), **fake) for key, value in service["environment"].items()}


def nginx_text(name: str = "nginx.conf") -> str:
    """The config without comments."""
    return re.sub(r"#[^\n]*", "", (NGINX_DIR / name).read_text())


def nginx_directives(name: str, text: str | None = None) -> list[str]:
    source = nginx_text() if text is None else text
    return [m.group(1).strip() for m in re.finditer(rf"(?m)^\s*{name}\s+([^;]*);", source)]


def dockerfile_port() -> int:
    return int(dockerfile_stages()[-1].last("EXPOSE"))


# --- The app, its routes and its metrics ----------------------------------------------------


@pytest.fixture(scope="module")
def deploy_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('deploy') / 'primetrade.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="module")
async def deployed_app(deploy_database_url: str) -> AsyncIterator[FastAPI]:
    # An anonymous budget of one, so a second anonymous call records a rate-limit metric too.
    settings = make_settings(
        deploy_database_url,
        rate_limit_enabled=True,
        rate_limit_anonymous="1/day",
        redis_url=None,
        read_database_urls=[],
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


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


@pytest.fixture(scope="module")
async def route_status(deployed_app: FastAPI) -> dict[str, int]:
    """What the app answers on each of `probed_paths()` (the probes need a 200)."""
    async with asgi_client(deployed_app) as client:
        return {path: (await client.get(path)).status_code for path in sorted(probed_paths())}


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


# --- Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_slim_python() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    runtime = stages[-1]
    assert runtime.base == "python:3.11-slim"
    builders = {stage.name for stage in stages[:-1]}
    copied_from = {
        match.group(1)
        for value in runtime.all("COPY")
        if (match := re.search(r"--from=(\S+)", value))
    }
    assert copied_from, "the runtime copies from a builder stage"
    assert copied_from <= builders


def test_dockerfile_runs_as_a_numeric_non_root_user() -> None:
    user = dockerfile_stages()[-1].last("USER")
    uid = user.partition(":")[0]
    assert uid.isdigit(), "numeric, so Kubernetes can check runAsNonRoot"
    assert int(uid) != 0


def test_dockerfile_environment() -> None:
    environment: dict[str, str] = {}
    for instruction in dockerfile_stages()[-1].all("ENV"):
        environment.update(env_pairs(instruction))
    assert environment["PYTHONDONTWRITEBYTECODE"] == "1"
    assert environment["PYTHONUNBUFFERED"] == "1"
    assert environment["ENVIRONMENT"] == "production"
    app_names = {name for name in environment if name in SETTING_NAMES}
    assert app_names == {"ENVIRONMENT"}


def test_dockerfile_entrypoint_and_command_agree_with_the_cli() -> None:
    runtime = dockerfile_stages()[-1]
    assert json.loads(runtime.last("ENTRYPOINT")) == ["primetrade"]
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'(?m)^primetrade = "primetrade\.cli:main"$', pyproject)
    params = cli_params(json.loads(runtime.last("CMD")))
    assert params["host"] == "0.0.0.0"  # noqa: S104 - inside a container, on purpose
    assert params["port"] == dockerfile_port()


def test_dockerfile_healthcheck_probes_liveness(route_status: dict[str, int]) -> None:
    healthcheck = dockerfile_stages()[-1].last("HEALTHCHECK")
    url = re.search(r"http://[^'\"\s]+", healthcheck)
    assert url, healthcheck
    parsed = urlsplit(url.group(0))
    assert parsed.path == "/health"
    assert route_status[parsed.path] == 200
    assert parsed.port == dockerfile_port()
    assert "curl" not in healthcheck, "slim images have no curl"


def test_dockerignore_keeps_secrets_and_clutter_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".git", ".venv", "data"} <= ignored


# --- compose.yaml ---------------------------------------------------------------------------


def test_compose_has_every_piece_with_a_healthcheck() -> None:
    found = services()
    expected = {"nginx", "migrate", "postgres-primary", "postgres-replica", "redis"}
    assert expected | set(API_SERVICES) <= set(found)
    for name, service in found.items():
        if name == "migrate":
            assert service["restart"] == "no", "a one-shot job"
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_compose_start_order() -> None:
    found = services()

    def condition(service: str, on: str) -> str:
        condition: str = found[service]["depends_on"][on]["condition"]
        return condition

    for api in API_SERVICES:
        assert condition(api, "migrate") == "service_completed_successfully"
        assert condition("nginx", api) == "service_healthy"
    assert condition("migrate", "postgres-primary") == "service_healthy"
    assert condition("postgres-replica", "postgres-primary") == "service_healthy"
    for name, service in found.items():
        assert set(service.get("depends_on", {})) <= set(found), name


def test_compose_app_environment_names_are_settings() -> None:
    for name, service in app_services().items():
        unknown = set(service["environment"]) - SETTING_NAMES
        assert not unknown, f"{name} sets {sorted(unknown)}, which Settings does not read"


def test_compose_app_environment_is_valid_production_settings() -> None:
    found = services()
    for name, service in app_services().items():
        raw = service["environment"]
        assert re.fullmatch(r"\$\{SECRET_KEY:\?[^}]+\}", raw["SECRET_KEY"]), "required, no default"
        settings = settings_from(compose_app_environment(service))
        assert settings.environment == "production", name
        urls = [settings.database_url, *settings.read_database_urls, settings.redis_url or ""]
        hosts = {urlsplit(url).hostname for url in urls}
        assert hosts <= set(found), f"{name} points at hosts compose does not run: {hosts}"
        assert urlsplit(settings.database_url).hostname == "postgres-primary"
        assert {urlsplit(url).hostname for url in settings.read_database_urls} == {
            "postgres-replica"
        }


def test_compose_trusts_exactly_nginx() -> None:
    found = services()
    addresses = [
        ipaddress.ip_address(network["ipv4_address"])
        for network in found["nginx"]["networks"].values()
    ]
    for name in API_SERVICES:
        trusted = settings_from(compose_app_environment(found[name])).trusted_proxies
        assert [ipaddress.ip_address(entry) for entry in trusted] == addresses, name
    subnets = [
        ipaddress.ip_network(config["subnet"])
        for network in compose()["networks"].values()
        for config in network.get("ipam", {}).get("config", [])
    ]
    assert any(address in subnet for address in addresses for subnet in subnets)


def test_compose_apis_serve_on_the_image_port_without_migrating() -> None:
    found = services()
    for name in API_SERVICES:
        service = found[name]
        params = cli_params(service["command"])
        assert params["port"] == dockerfile_port(), name
        assert params["migrate_first"] is False, "migrations belong to the migrate service"
        (url,) = re.findall(r"http://[^'\s]+", " ".join(service["healthcheck"]["test"]))
        probe = urlsplit(url)
        assert (probe.path, probe.port) == ("/ready", params["port"])
        assert seconds(service["stop_grace_period"]) > graceful_shutdown_seconds()
    assert cli_params(found["migrate"]["command"]) == {"revision": "head"}


def test_compose_runs_jobs_on_a_worker_and_the_schedule_on_a_scheduler() -> None:
    found = services()
    for name, service in app_services().items():
        settings = settings_from(compose_app_environment(service))
        broker = urlsplit(settings.broker_url or "")
        assert (broker.scheme, broker.hostname) == ("amqp", "rabbitmq"), name
    assert found["rabbitmq"]["healthcheck"]["test"]
    worker, scheduler = found["worker"], found["scheduler"]
    for service in (worker, scheduler):
        assert service["image"] == APP_IMAGE
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    # The worker's health check reads the metrics endpoint the command opens.
    params = cli_params(worker["command"])
    (url,) = re.findall(r"http://[^'\s]+", " ".join(worker["healthcheck"]["test"]))
    # (Bound to every interface, the endpoint answers on loopback too.)
    every_interface = "0.0.0.0"  # noqa: S104 - what the compose file asks for, not a bind
    loopback = {"127.0.0.1"} if params["metrics_host"] == every_interface else set()
    reachable = {params["metrics_host"]} | loopback
    assert urlsplit(url).hostname in reachable
    assert urlsplit(url).port == 9191
    assert params["metrics_port"] == 9191
    # The scheduler's health check reads the heartbeat its command writes, somewhere writable.
    heartbeat = str(cli_params(scheduler["command"])["heartbeat_file"])
    assert f"'{heartbeat}'" in " ".join(scheduler["healthcheck"]["test"])
    assert any(heartbeat.startswith(f"{mount}/") for mount in scheduler["tmpfs"])


def test_compose_apis_and_workers_share_the_export_and_mail_files() -> None:
    """A worker builds the file; any API instance must be able to hand it out."""
    sharing = {**{name: services()[name] for name in API_SERVICES}, "worker": services()["worker"]}
    for name, service in sharing.items():
        settings = settings_from(compose_app_environment(service))
        assert service["read_only"] is True, name
        mounts = [volume.split(":")[:2] for volume in service["volumes"]]
        shared = [target for source, target in mounts if source in compose()["volumes"]]
        assert any(settings.export_dir.startswith(f"{target}/") for target in shared), name
        mail_dir = settings.mail_url.removeprefix("file://")
        assert any(mail_dir.startswith(f"{target}/") for target in shared), name


def test_compose_bind_mounts_exist() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_compose_nginx_uses_the_deploy_config() -> None:
    nginx = services()["nginx"]
    mounts = dict(volume.split(":")[:2] for volume in nginx["volumes"])
    assert mounts["./deploy/nginx/nginx.conf"] == "/etc/nginx/nginx.conf"
    # `include upstreams.conf` resolves beside the main config.
    assert mounts["./deploy/nginx/upstreams.conf"] == "/etc/nginx/upstreams.conf"
    published = {int(str(port).rsplit(":", 1)[1]) for port in nginx["ports"]}
    listen = {int(value) for value in nginx_directives("listen")}
    assert published == listen


def test_compose_upstreams_are_the_api_services() -> None:
    servers = nginx_directives("server", nginx_text("upstreams.conf"))
    addresses = {entry.split()[0] for entry in servers}
    assert addresses == {f"{name}:{dockerfile_port()}" for name in API_SERVICES}
    other = [
        line
        for line in nginx_text("upstreams.conf").splitlines()
        if line.strip() and not line.strip().startswith("server ")
    ]
    assert not other, "upstreams.conf holds server lines only"


# --- nginx.conf (read) ----------------------------------------------------------------------


def test_nginx_body_limit_matches_the_app() -> None:
    (value,) = nginx_directives("client_max_body_size")
    number, unit = re.fullmatch(r"(\d+)([kKmM]?)", value).groups()  # type: ignore[union-attr]
    size = int(number) * {"": 1, "k": 1024, "m": 1024**2}[unit.lower()]
    assert size == Settings.model_fields["max_body_bytes"].default


def test_nginx_proxies_with_keepalive_and_forwarded_headers() -> None:
    text = nginx_text()
    assert "least_conn;" in text
    assert "keepalive 32;" in text
    assert "include upstreams.conf;" in text
    assert nginx_directives("proxy_http_version") == ["1.1"]
    headers = dict(value.split(None, 1) for value in nginx_directives("proxy_set_header"))
    assert headers["Connection"] == '""'
    # Set, not appended: the app trusts nginx's address, so a client-sent chain is dropped.
    assert headers["X-Forwarded-For"] == "$remote_addr"
    assert headers["X-Forwarded-Proto"] == "$scheme"
    assert "X-Request-ID" in headers


def test_nginx_retries_only_idempotent_requests() -> None:
    (retry,) = nginx_directives("proxy_next_upstream")
    assert set(retry.split()) == {"error", "timeout", "http_502", "http_503", "http_504"}
    assert "non_idempotent" not in nginx_text()
    assert nginx_directives("proxy_next_upstream_tries") == ["3"]


def test_nginx_writes_only_under_its_prefix() -> None:
    for name in ("pid", *(f"{kind}_temp_path" for kind in ("client_body", "proxy"))):
        (value,) = nginx_directives(name)
        assert not value.startswith("/"), f"{name} must be relative to the -p prefix"


def test_nginx_access_log_is_json_with_request_id_and_upstream() -> None:
    text = nginx_text()
    (access_log,) = [value for value in nginx_directives("access_log") if value != "off"]
    format_name = access_log.split()[1]
    definition = re.search(rf"log_format\s+{format_name}\s+escape=json(.*?);", text, re.S)
    assert definition, "the access log format escapes JSON"
    assert '"request_id":"$req_id"' in definition.group(1)
    assert "$upstream_addr" in definition.group(1)


# --- nginx (run) ----------------------------------------------------------------------------


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx",) if os.access(path, os.X_OK)), None
    )
    if found is None:
        if IN_CI:
            pytest.fail("CI needs nginx: apt-get install -y nginx")
        pytest.skip("SKIPPED nginx checks: no nginx binary (apt-get install -y nginx)")
    return found


def nginx_prefix(directory: Path, servers: list[str], *, port: int | None = None) -> Path:
    """A prefix holding nginx.conf (optionally on another port) and a generated upstreams.conf."""
    config = (NGINX_DIR / "nginx.conf").read_text()
    if port is not None:
        assert config.count("listen 8080;") == 1
        config = config.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    (directory / "nginx.conf").write_text(config)
    (directory / "upstreams.conf").write_text("".join(f"server {s};\n" for s in servers))
    return directory / "nginx.conf"


def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    config = nginx_prefix(tmp_path, ["127.0.0.1:18001", "127.0.0.1:18002", "127.0.0.1:18003"])
    checked = subprocess.run(  # noqa: S603
        [nginx_binary(), "-t", "-p", f"{tmp_path}/", "-c", str(config), "-e", "stderr"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


class Upstream:
    """A stub instance: records what nginx sends and answers with a fixed status."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.seen: list[tuple[str, str, str, dict[str, str]]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                self.rfile.read(length)
                self._answer()

            def _answer(self) -> None:
                headers = {key.lower(): value for key, value in self.headers.items()}
                upstream.seen.append((self.command, self.path, self.request_version, headers))
                big = self.path == "/big"
                body = json.dumps({"headers": headers, "padding": "x" * (4096 if big else 0)})
                self.send_response(upstream.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RunningNginx:
    url: str
    failing: Upstream
    healthy: Upstream
    access_log: Path


@contextmanager
def nginx_running(prefix: Path, servers: list[str]) -> Iterator[str]:
    """nginx from deploy/nginx/nginx.conf in `prefix`, on a free loopback port; its URL."""
    binary = nginx_binary()
    port = free_port()
    config = nginx_prefix(prefix, servers, port=port)
    arguments = ["-p", f"{prefix}/", "-c", str(config), "-e", "stderr", "-g", "daemon off;"]
    with (prefix / "access.log").open("w") as out, (prefix / "error.log").open("w") as err:
        process = subprocess.Popen([binary, *arguments], stdout=out, stderr=err)  # noqa: S603
    try:
        wait_for_port(port, process, prefix / "error.log")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def running_nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNginx]:
    failing, healthy = Upstream(503), Upstream(200)
    prefix = tmp_path_factory.mktemp("nginx")
    # The failing instance first: every worker's first pick, so each path meets it.
    servers = [f"{failing.address} max_fails=0", f"{healthy.address} max_fails=0"]
    try:
        with nginx_running(prefix, servers) as url:
            yield RunningNginx(url, failing, healthy, prefix / "access.log")
    finally:
        failing.close()
        healthy.close()


def wait_for_port(port: int, process: subprocess.Popen[bytes], error_log: Path) -> None:
    deadline = time.monotonic() + STARTUP_GUARD_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nginx exited: {error_log.read_text()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail("nginx did not start listening")


def logged(access_log: Path, path: str) -> dict[str, Any]:
    """The last access-log entry for `path` (nginx may write it just after answering)."""
    deadline = time.monotonic() + STARTUP_GUARD_SECONDS
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in access_log.read_text().splitlines()]
        entries = [line for line in lines if line["path"] == path]
        if entries:
            return entries[-1]
        time.sleep(0.05)
    pytest.fail(f"no access-log entry for {path}")


def test_nginx_retries_reads_but_never_a_post(running_nginx: RunningNginx) -> None:
    with httpx.Client(base_url=running_nginx.url) as client:
        posts = [client.post("/api/v1/tasks", json={"title": "t"}) for _ in range(4)]
        gets = [client.get("/api/v1/tasks") for _ in range(4)]
    assert {response.status_code for response in gets} == {200}
    assert any(method == "GET" for method, *_ in running_nginx.failing.seen), "a GET was retried"
    assert 503 in {response.status_code for response in posts}, "a failed POST is not retried"
    delivered = running_nginx.failing.seen + running_nginx.healthy.seen
    assert sum(method == "POST" for method, *_ in delivered) == len(posts)


def test_nginx_forwards_client_and_request_id(running_nginx: RunningNginx) -> None:
    with httpx.Client(base_url=running_nginx.url) as client:
        generated = client.get("/health")
        kept = client.get("/health", headers={"X-Request-ID": "trace-42.a:b"})
        replaced = client.get(
            "/health", headers={"X-Request-ID": "not a valid id", "X-Forwarded-For": "192.0.2.7"}
        )
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    assert kept.headers["x-request-id"] == "trace-42.a:b"
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])
    for response in (generated, kept, replaced):
        headers = response.json()["headers"]
        assert headers["x-request-id"] == response.headers["x-request-id"]
        assert headers["x-forwarded-for"] == "127.0.0.1", "the peer, never a chain it sent"
        assert headers["x-forwarded-proto"] == "http"
    _method, _path, version, headers = running_nginx.healthy.seen[-1]
    assert (version, headers.get("connection")) == ("HTTP/1.1", None), "keep-alive upstream"


def test_nginx_hides_metrics_and_refuses_large_bodies(running_nginx: RunningNginx) -> None:
    seen_before = len(running_nginx.failing.seen) + len(running_nginx.healthy.seen)
    with httpx.Client(base_url=running_nginx.url) as client:
        hidden = [client.get(path) for path in ("/metrics", "/metrics/", "/%6detrics")]
        too_large = client.post("/api/v1/tasks", content=b"x" * (1024**2 + 1))
    assert [response.status_code for response in hidden] == [404, 404, 404]
    assert hidden[0].json()["code"] == "not_found"
    assert too_large.status_code == 413
    assert len(running_nginx.failing.seen) + len(running_nginx.healthy.seen) == seen_before


def test_nginx_gzips_json_and_logs_json(running_nginx: RunningNginx) -> None:
    with httpx.Client(base_url=running_nginx.url) as client:
        response = client.get("/big", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    proxied = logged(running_nginx.access_log, "/big")
    assert proxied["request_id"] == response.headers["x-request-id"]
    assert proxied["upstream_addr"] in {
        running_nginx.healthy.address,
        f"{running_nginx.failing.address}, {running_nginx.healthy.address}",
    }


def test_nginx_answers_a_problem_when_no_instance_answers(tmp_path: Path) -> None:
    with nginx_running(tmp_path, [f"127.0.0.1:{free_port()}"]) as url:
        response = httpx.get(f"{url}/api/v1/tasks", headers={"X-Request-ID": "lost-1"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert (body["code"], body["request_id"]) == ("service_unavailable", "lost-1")
    assert response.headers["x-request-id"] == "lost-1"


# --- Kubernetes -----------------------------------------------------------------------------


def test_kustomization_lists_every_manifest() -> None:
    on_disk = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(k8s_resources()) == on_disk
    kinds = set(k8s_objects())
    assert kinds == {
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
        "PersistentVolumeClaim",
    }
    assert all("namespace" not in obj["metadata"] for obj in k8s_objects().values())


def test_k8s_setting_names_are_settings() -> None:
    objects = k8s_objects()
    names = set(objects["ConfigMap"]["data"]) | set(objects["Secret"]["stringData"])
    for kind in ("Deployment", "Job"):
        names |= {entry["name"] for entry in only_container(kind).get("env", [])}
    assert names - SETTING_NAMES == set()


def test_k8s_settings_are_valid_once_the_placeholders_are_replaced() -> None:
    objects = k8s_objects()
    secret = objects["Secret"]["stringData"]
    with pytest.raises(ValidationError):
        settings_from({"ENVIRONMENT": "production", "SECRET_KEY": secret["SECRET_KEY"]})
    real = {key: value.replace("REPLACE-ME", "pw") for key, value in secret.items()}
    settings = settings_from({**objects["ConfigMap"]["data"], **real, "SECRET_KEY": SECRET})
    assert settings.environment == "production"
    assert settings.database_url.startswith("postgresql+asyncpg://")


def test_k8s_pods_read_the_config_and_secret() -> None:
    objects = k8s_objects()
    expected = {
        ("configMapRef", objects["ConfigMap"]["metadata"]["name"]),
        ("secretRef", objects["Secret"]["metadata"]["name"]),
    }
    for kind in ("Deployment", "Job"):
        env_from = only_container(kind)["envFrom"]
        sources = {(key, ref["name"]) for entry in env_from for key, ref in entry.items()}
        assert sources == expected, kind


def test_k8s_deployment_serves_on_the_image_port() -> None:
    deployment = k8s_objects()["Deployment"]
    assert deployment["spec"]["replicas"] == 3
    container = only_container("Deployment")
    params = cli_params(container["args"])
    (port,) = container["ports"]
    assert params["port"] == port["containerPort"] == dockerfile_port()
    assert params["host"] == "0.0.0.0"  # noqa: S104 - inside a container, on purpose
    assert params["migrate_first"] is False, "migrations belong to the Job"
    scrape = deployment["spec"]["template"]["metadata"]["annotations"]
    assert (scrape["prometheus.io/port"], scrape["prometheus.io/path"]) == (
        str(port["containerPort"]),
        "/metrics",
    )


def test_k8s_probes_hit_real_routes(route_status: dict[str, int]) -> None:
    container = only_container("Deployment")
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    expected = {"readinessProbe": "/ready", "livenessProbe": "/health", "startupProbe": "/health"}
    for probe, path in expected.items():
        http_get = container[probe]["httpGet"]
        assert http_get["path"] == path, probe
        assert route_status[path] == 200, probe
        assert ports.get(http_get["port"], http_get["port"]) == dockerfile_port(), probe


def test_k8s_shutdown_outlasts_prestop_and_graceful_shutdown() -> None:
    container = only_container("Deployment")
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    grace = pod_spec("Deployment")["terminationGracePeriodSeconds"]
    assert grace > float(command[1]) + graceful_shutdown_seconds()


def test_k8s_pods_are_locked_down() -> None:
    uid = int(dockerfile_stages()[-1].last("USER").partition(":")[0])
    for kind in ("Deployment", "Job"):
        spec, container = pod_spec(kind), only_container(kind)
        assert spec["securityContext"]["runAsNonRoot"] is True, kind
        assert spec["securityContext"]["runAsUser"] == uid, kind
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, kind
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, kind
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], kind  # noqa: S108 - the pod's /tmp
        resources = container["resources"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[bound]), (kind, bound)


def test_k8s_pods_share_the_export_files() -> None:
    """Whichever pod built an export, whichever pod the Service picks can hand it out."""
    objects = k8s_objects()
    claim = objects["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    volumes = {volume["name"]: volume for volume in pod_spec("Deployment")["volumes"]}
    mounts = only_container("Deployment")["volumeMounts"]
    shared = [
        mount["mountPath"]
        for mount in mounts
        if volumes[mount["name"]].get("persistentVolumeClaim", {}).get("claimName")
        == claim["metadata"]["name"]
    ]
    real = {k: v.replace("REPLACE-ME", "pw") for k, v in objects["Secret"]["stringData"].items()}
    settings = settings_from({**objects["ConfigMap"]["data"], **real, "SECRET_KEY": SECRET})
    assert any(settings.export_dir.startswith(f"{path}/") for path in shared)
    assert settings.mail_url.startswith("smtp://")


def test_k8s_service_reaches_the_pods() -> None:
    objects = k8s_objects()
    service, container = objects["Service"], only_container("Deployment")
    pod_labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    ports = {entry["name"]: entry["containerPort"] for entry in container["ports"]}
    assert port["port"] == 80
    assert ports.get(port["targetPort"], port["targetPort"]) == dockerfile_port()


def test_k8s_connections_at_the_autoscalers_maximum_fit_postgresqls_default() -> None:
    objects = k8s_objects()
    config = objects["ConfigMap"]["data"]
    deployment = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert "--workers" not in deployment["args"]  # one server process per pod
    pods = objects["HorizontalPodAutoscaler"]["spec"]["maxReplicas"]
    primary = pods * (int(config["DB_POOL_SIZE"]) + int(config["DB_MAX_OVERFLOW"]))
    replica = pods * int(config["DB_REPLICA_POOL_SIZE"])
    # PostgreSQL's default max_connections is 100, 3 of them reserved for superusers; keep
    # some for migrations, the replica probes and an operator.
    assert max(primary, replica) <= 80, (primary, replica)


def test_k8s_autoscaling_and_disruption_budget() -> None:
    objects = k8s_objects()
    hpa, pdb, deployment = (
        objects["HorizontalPodAutoscaler"],
        objects["PodDisruptionBudget"],
        objects["Deployment"],
    )
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    budget = pdb["spec"]
    assert budget.get("maxUnavailable") == 1 or budget.get("minAvailable") == 2
    # Some disruption is always allowed, or node drains would block forever.
    assert budget.get("minAvailable", 0) < hpa["spec"]["minReplicas"]


def test_k8s_migration_job_runs_the_same_image() -> None:
    job = only_container("Job")
    assert job["image"] == only_container("Deployment")["image"]
    assert cli_params(job["args"]) == {"revision": "head"}
    assert pod_spec("Job")["restartPolicy"] in {"Never", "OnFailure"}
    images = load_yaml(K8S / "kustomization.yaml")["images"]
    assert {image["name"] for image in images} == {job["image"].partition(":")[0]}


# --- Prometheus and Grafana -----------------------------------------------------------------


def prometheus_config() -> dict[str, Any]:
    config: dict[str, Any] = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    return config


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


# --- docs/scaling.md ------------------------------------------------------------------------


def test_scaling_doc_names_real_settings_and_files() -> None:
    doc = ROOT / "docs" / "scaling.md"
    text = doc.read_text()
    named = set(re.findall(r"`([A-Z][A-Z0-9_]{3,})(?:=[^`]*)?`", text))
    assert named - SETTING_NAMES <= {"PROMETHEUS_MULTIPROC_DIR"}, named - SETTING_NAMES
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        assert (doc.parent / target).resolve().exists(), target
