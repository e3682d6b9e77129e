"""deploy/nginx/nginx.conf agrees with the app, and a real nginx runs it.

The config is read and held against the app (the body limit against `Settings`, forwarded
headers, retries of idempotent requests only, a JSON access log), then checked by nginx
itself (`nginx -t`) and run in front of stub upstreams. No container engine is needed;
without an nginx binary these checks skip, except under CI, where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from primetrade.settings import Settings
from tests.conftest import IN_CI
from tests.deploy.support import NGINX_DIR, nginx_directives, nginx_text
from tests.pgserver import free_port

STARTUP_GUARD_SECONDS = 10  # polling bound for nginx (listening, logging); never asserted on


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
