"""The Dockerfile, .dockerignore and compose.yaml agree with the code.

The files are read and held against the app itself: setting names against `Settings`, the
healthcheck paths against the routes (asked of the app), ports and arguments against the CLI,
compose's hosts, networks and volumes against its own services, and nginx's mounts and
upstreams against the API services. No container engine is needed.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from typing import Any
from urllib.parse import urlsplit

from tests.deploy.support import (
    API_SERVICES,
    ROOT,
    SETTING_NAMES,
    cli_params,
    compose,
    compose_app_environment,
    dockerfile_port,
    dockerfile_stages,
    graceful_shutdown_seconds,
    nginx_directives,
    nginx_text,
    services,
    settings_from,
)

APP_IMAGE = "primetrade:local"


# --- Readers --------------------------------------------------------------------------------


def app_services() -> dict[str, Any]:
    return {name: svc for name, svc in services().items() if svc.get("image") == APP_IMAGE}


def env_pairs(instruction: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in shlex.split(instruction))


def seconds(value: str | int) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m)?", str(value))
    assert match, f"{value!r} is not a duration"
    number, unit = int(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1, "m": 60}[unit]


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
