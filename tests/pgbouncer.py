"""A private PgBouncer in transaction pooling mode, on a free loopback port, for one test run.

It runs with the settings shipped in deploy/pgbouncer/pgbouncer.ini (pooling mode, timeouts,
client limits); only the addresses, authentication, files and pool size are its own. It
forwards every database name to one PostgreSQL server, so a URL keeps its database and only
changes host and port. Few server connections are pooled on purpose: the app's clients then
share them, as they do in production, which is exactly when per-connection state such as a
prepared statement name would collide. PgBouncer refuses to run as root; as root it is
started with `-u postgres`, which must be able to read its folder.
"""

from __future__ import annotations

import configparser
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.pgserver import free_port

SERVER_POOL_SIZE = 4
SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "pgbouncer" / "pgbouncer.ini"
START_TIMEOUT_SECONDS = 10.0


def find_binary() -> str | None:
    """The pgbouncer program (Debian installs it in /usr/sbin, often not on PATH)."""
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")


def shipped_config() -> configparser.ConfigParser:
    """deploy/pgbouncer/pgbouncer.ini, parsed."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(SHIPPED_CONFIG.read_text())
    return parser


def shipped_settings() -> dict[str, str]:
    """The file's [pgbouncer] section, which the tests' PgBouncers run with."""
    return dict(shipped_config()["pgbouncer"])


def unavailable_reason() -> str | None:
    if find_binary() is None:
        return "no `pgbouncer` program (Debian/Ubuntu package: pgbouncer)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root but there is no `postgres` user to run pgbouncer as"
    return None


class PrivateBouncer:
    """`start()` in front of the server of `server_url`, `url_for()` a database, `stop()`."""

    def __init__(self, server_url: str) -> None:
        self._server = make_url(server_url)
        self.root = Path(tempfile.mkdtemp(prefix="primetrade-pgbouncer-"))
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def url_for(self, database_url: str) -> str:
        """`database_url` reached through this PgBouncer, marked so the app knows it."""
        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        url = url.update_query_dict({"prepared_statement_cache_size": "0"})
        return url.render_as_string(hide_password=False)

    def start(self) -> None:
        binary = find_binary()
        assert binary is not None, unavailable_reason()
        config = self._write_config()
        command = [binary, str(config)]
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            command[1:1] = ["-u", "postgres"]
        log = (self.root / "stderr.log").open("wb")
        self._process = subprocess.Popen(command, stdout=log, stderr=log)  # noqa: S603
        log.close()
        self._wait_until_listening()

    def stop(self) -> None:
        """Stop this PgBouncer (SIGTERM: at once) and delete its folder."""
        try:
            if self._process is not None and self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _write_config(self) -> Path:
        user = self._server.username or "postgres"
        password = self._server.password or ""
        target = f"host={self._server.host or '127.0.0.1'} port={self._server.port or 5432}"
        target += f" user={user}" + (f" password={password}" if password else "")
        users = self.root / "users.txt"
        users.write_text(f'"{user}" "{password}"\n')
        settings = shipped_settings() | {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "unix_socket_dir": "",
            "auth_type": "trust",
            "auth_file": str(users),
            "default_pool_size": str(SERVER_POOL_SIZE),
            "logfile": str(self.root / "pgbouncer.log"),
            "pidfile": str(self.root / "pgbouncer.pid"),
        }
        config = self.root / "pgbouncer.ini"
        config.write_text(
            f"[databases]\n* = {target}\n[pgbouncer]\n"
            + "".join(f"{name} = {value}\n" for name, value in settings.items())
        )
        return config

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            except OSError:
                time.sleep(0.05)
                continue
            return
        stderr = (self.root / "stderr.log").read_text(errors="replace")
        raise AssertionError(f"pgbouncer did not start:\n{stderr}\n{self.log()}")
