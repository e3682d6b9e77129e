"""A scaled-out deployment on one machine, on loopback, with every file under one folder.

PostgreSQL primary and a streaming replica (the machine's binaries, see tests/pgserver.py),
Redis, N `primetrade serve` instances and nginx with deploy/nginx/nginx.conf in front. The
same code backs `make cluster` (scripts/cluster.py) and tests/test_cluster.py, so what the
tests exercise is what a developer runs. It lives beside pgserver.py, which it builds on.

Every process is started through tests/supervisor.py and recorded in `<state>/cluster.json`
with its pid and start time, so `down` (possibly from another process) stops exactly those and
nothing that merely reuses a pid; PostgreSQL is stopped through its data folders. Nothing
binds a standard port.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests import pgserver
from tests.supervisor import Record, Supervisor, SupervisorError, port_open

REPO = Path(__file__).resolve().parents[1]
NGINX_SOURCE = REPO / "deploy" / "nginx"
STATE_FILE = "cluster.json"
START_TIMEOUT = 60.0
DATABASE = "primetrade"
# What each missing tool comes in, for `install_missing`.
PACKAGES = {"redis-server": "redis-server", "nginx": "nginx"}


class ClusterError(RuntimeError):
    """The cluster could not be started, or a process in it misbehaved."""


@dataclass
class Ports:
    primary: int
    replica: int
    redis: int
    nginx: int
    instances: list[int]

    @classmethod
    def free(cls, instances: int = 3) -> Ports:
        """Ports the kernel says are free now (tests: never collide with anything)."""
        take = pgserver.free_port
        return cls(take(), take(), take(), take(), [take() for _ in range(instances)])

    @classmethod
    def fixed(cls, instances: int = 3) -> Ports:
        """Predictable ports for a developer, none of them a service's standard port."""
        return cls(15432, 15433, 16379, 8080, [8101 + index for index in range(instances)])


@dataclass
class Cluster:
    """Start with `up()`, stop with `down()`; `load()` finds a cluster another process began."""

    state: Path
    ports: Ports
    settings: dict[str, str] = field(default_factory=dict)
    records: dict[str, Record] = field(default_factory=dict)
    processes: Supervisor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.processes = Supervisor(self.state / "logs", self.state, self.records, self._save)

    # --- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.nginx}"

    @property
    def instance_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports.instances]

    def database_url(self, port: int) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{DATABASE}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports.redis}/0"

    # --- the whole cluster ----------------------------------------------------------------------

    def up(self) -> None:
        """Start everything, in dependency order; on any failure stop what did start."""
        if (self.state / STATE_FILE).exists():
            raise ClusterError(f"a cluster is already recorded in {self.state}; stop it first")
        self._check_ports_free()
        self.state.mkdir(parents=True, exist_ok=True)
        self._save()
        try:
            self._start_databases()
            self.start_redis()
            self._migrate()
            for index in range(len(self.ports.instances)):
                self.start_instance(index)
            for index in range(len(self.ports.instances)):
                self.wait_ready(index)
            self._start_nginx()
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        """Stop every recorded process and both databases, then delete the state folder."""
        self.processes.stop_all()
        for server in (self.replica, self.primary):
            if server.datadir.exists() and server.is_running():
                server.stop("fast")
        shutil.rmtree(self.state, ignore_errors=True)

    def status(self) -> dict[str, str]:
        """Each part and whether it runs."""
        report = {name: "up" if self.processes.running(name) else "down" for name in self.records}
        for name, server in (("primary", self.primary), ("replica", self.replica)):
            report[f"postgres-{name}"] = "up" if server.is_running() else "down"
        return report

    @classmethod
    def load(cls, state: Path) -> Cluster:
        """The cluster recorded in `state` by an earlier `up()`."""
        data = json.loads((state / STATE_FILE).read_text())
        return cls(
            state=state,
            ports=Ports(**data["ports"]),
            settings=data["settings"],
            records={name: Record(**record) for name, record in data["processes"].items()},
        )

    # --- PostgreSQL -----------------------------------------------------------------------------

    @property
    def primary(self) -> pgserver.PrivateServer:
        return self._postgres("primary", self.ports.primary)

    @property
    def replica(self) -> pgserver.PrivateServer:
        return self._postgres("replica", self.ports.replica)

    def _postgres(self, name: str, port: int) -> pgserver.PrivateServer:
        bindir = pgserver.find_bindir()
        if bindir is None:
            raise ClusterError(pgserver.unavailable_reason() or "no PostgreSQL binaries")
        return pgserver.PrivateServer(bindir, self.state / f"postgres-{name}", port)

    def _start_databases(self) -> None:
        primary, replica = self.primary, self.replica
        # The servers run as `postgres`, which must be able to pass through the state folder
        # (a mkdtemp folder is private to its owner): grant traversal, not listing.
        self.state.chmod(self.state.stat().st_mode | 0o011)
        for server in (primary, replica):
            server.root.mkdir()
            _give_to_postgres(server.root)
        # initdb's trust rules include `host replication all 127.0.0.1/32`, and wal_level
        # defaults to `replica`: the primary streams without further configuration.
        _postgres_command(primary, "initdb", "-D", str(primary.datadir), "-A", "trust")
        primary.start()
        self.sql("primary", f"CREATE DATABASE {DATABASE}", database="postgres")
        # -R writes standby.signal and primary_conninfo: the copy starts as a hot standby.
        _postgres_command(
            replica,
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(self.ports.primary), "-U", "postgres"),
            *("-D", str(replica.datadir), "-R", "-X", "stream", "-c", "fast"),
        )
        replica.start()

    def sql(self, server: str, query: str, *, database: str = DATABASE) -> str:
        """Run one statement with psql on `primary` or `replica`; its unaligned output."""
        target = self.primary if server == "primary" else self.replica
        command = [
            str(target.bindir / "psql"),
            *("-h", "127.0.0.1", "-p", str(target.port), "-U", "postgres", "-d", database),
            *("-v", "ON_ERROR_STOP=1", "-AtX", "-c", query),
        ]
        done = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, timeout=pgserver.COMMAND_TIMEOUT
        )
        if done.returncode != 0:
            raise ClusterError(f"psql on the {server} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    # --- Redis ----------------------------------------------------------------------------------

    def start_redis(self) -> None:
        """Start Redis (again) on its port, with nothing persisted."""
        folder = self.state / "redis"
        folder.mkdir(exist_ok=True)
        command = [
            _require("redis-server"),
            *("--port", str(self.ports.redis), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(folder)),
        ]
        self.processes.spawn("redis", command, self._environment({}))
        self.processes.wait_for_port("redis", self.ports.redis, START_TIMEOUT)

    def stop_redis(self) -> None:
        self.processes.stop("redis")

    # --- app instances --------------------------------------------------------------------------

    def instance_environment(self) -> dict[str, str]:
        """What every instance is configured with (recorded, so `load()` can restart one)."""
        return {
            "ENVIRONMENT": "production",
            "DATABASE_URL": self.database_url(self.ports.primary),
            "READ_DATABASE_URLS": self.database_url(self.ports.replica),
            "REDIS_URL": self.redis_url,
            "TRUSTED_PROXIES": "127.0.0.1",
            "SECRET_KEY": self._secret_key(),
            "LOG_FORMAT": "json",
            # A development cluster: accounts work at once, without reading the verification
            # mail (which goes to files under the state folder, `MAIL_URL`'s default).
            "REQUIRE_EMAIL_VERIFICATION": "false",
            **self.settings,
        }

    def start_instance(self, index: int) -> None:
        """Start (or restart) instance `index`; `wait_ready` waits for it."""
        port = self.ports.instances[index]
        command = [
            str(Path(sys.executable).parent / "primetrade"),
            *("serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"),
        ]
        environment = self._environment(self.instance_environment())
        self.processes.spawn(f"instance-{index + 1}", command, environment)

    def wait_ready(self, index: int) -> None:
        """Wait until instance `index` answers GET /ready with 200."""
        name, url = f"instance-{index + 1}", self.instance_urls[index]
        try:
            self.processes.wait_ready(name, url, START_TIMEOUT)
        except SupervisorError as exc:
            raise ClusterError(str(exc)) from exc

    def signal_instance(self, index: int, signum: int = signal.SIGTERM) -> None:
        self.processes.signal(f"instance-{index + 1}", signum)

    def wait_exit(self, index: int) -> int:
        """The exit status of instance `index` (started by this object) once it has ended."""
        return self.processes.wait(f"instance-{index + 1}")

    def _migrate(self) -> None:
        # Once, before the instances start with --no-migrate: three concurrent migrations of
        # one empty database would race for the same DDL.
        command = [str(Path(sys.executable).parent / "primetrade"), "migrate"]
        done = subprocess.run(  # noqa: S603
            command,
            env=self._environment(self.instance_environment()),
            cwd=self.state,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
        )
        if done.returncode != 0:
            raise ClusterError(f"migrations failed:\n{done.stdout}{done.stderr}")

    def _secret_key(self) -> str:
        path = self.state / "secret_key"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip()

    # --- nginx ----------------------------------------------------------------------------------

    def _start_nginx(self) -> None:
        prefix = self.state / "nginx"
        prefix.mkdir(exist_ok=True)
        config = _nginx_config(self.ports.nginx)
        (prefix / "nginx.conf").write_text(config)
        (prefix / "upstreams.conf").write_text(_upstreams(self.ports.instances))
        nginx = _require("nginx")
        # The prefix holds the pid file and temp folders; nginx.conf names them relatively.
        arguments = ["-p", f"{prefix}/", "-c", str(prefix / "nginx.conf"), "-e", "stderr"]
        checked = subprocess.run(  # noqa: S603
            [nginx, "-t", "-q", *arguments], capture_output=True, text=True, timeout=30
        )
        if checked.returncode != 0:
            raise ClusterError(f"nginx refused its configuration:\n{checked.stderr}")
        command = [nginx, *arguments, "-g", "daemon off;"]
        self.processes.spawn("nginx", command, self._environment({}))
        self.processes.wait_for_port("nginx", self.ports.nginx, START_TIMEOUT)

    def _environment(self, overrides: dict[str, str]) -> dict[str, str]:
        # Settings of the calling shell (a DATABASE_URL, a .env-style export) must not leak in.
        base = {key: value for key, value in os.environ.items() if key in {"PATH", "HOME", "LANG"}}
        return {**base, **overrides}

    def _check_ports_free(self) -> None:
        ports = [self.ports.primary, self.ports.replica, self.ports.redis, self.ports.nginx]
        busy = [port for port in [*ports, *self.ports.instances] if port_open(port)]
        if busy:
            raise ClusterError(f"ports already in use: {', '.join(map(str, busy))}")

    def _save(self) -> None:
        data = {
            "ports": asdict(self.ports),
            "settings": self.settings,
            "processes": {name: asdict(record) for name, record in self.records.items()},
        }
        (self.state / STATE_FILE).write_text(json.dumps(data, indent=2) + "\n")


# --- helpers ------------------------------------------------------------------------------------


def missing_tools() -> list[str]:
    """What this machine lacks to run a cluster (empty when it has everything)."""
    missing = [tool for tool in PACKAGES if shutil.which(tool) is None]
    reason = pgserver.unavailable_reason()
    if reason is not None:
        missing.append(f"PostgreSQL ({reason})")
    if not (NGINX_SOURCE / "nginx.conf").exists():
        missing.append(f"{NGINX_SOURCE / 'nginx.conf'}")
    return missing


def install_missing() -> None:
    """Install the Debian packages for missing tools (apt-get; needs root)."""
    packages = sorted({PACKAGES[tool] for tool in PACKAGES if shutil.which(tool) is None})
    if not packages:
        return
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise ClusterError(f"install these packages first: {' '.join(packages)}")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([apt, "update", "-qq"], check=True, env=environment)  # noqa: S603
    subprocess.run([apt, "install", "-y", "-qq", *packages], check=True, env=environment)  # noqa: S603


def _nginx_config(port: int) -> str:
    # deploy's nginx.conf listens on 8080 on every interface, as a container should; the
    # local copy listens on loopback only, on the port asked for.
    source = (NGINX_SOURCE / "nginx.conf").read_text()
    if "listen 8080;" not in source:
        raise ClusterError(f"{NGINX_SOURCE / 'nginx.conf'} no longer has `listen 8080;`")
    return source.replace("listen 8080;", f"listen 127.0.0.1:{port};")


def _upstreams(ports: list[int]) -> str:
    # max_fails=1: one refused connection takes an instance out for fail_timeout, so a
    # stopped instance costs each nginx worker at most one retried attempt.
    lines = [f"server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in ports]
    return "\n".join(["# Written by tests/cluster.py for this cluster.", *lines]) + "\n"


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ClusterError(f"{tool} is not installed")
    return path


def _postgres_command(server: pgserver.PrivateServer, program: str, *args: str) -> None:
    command = [str(server.bindir / program), *args]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    done = subprocess.run(  # noqa: S603
        command, capture_output=True, text=True, timeout=pgserver.COMMAND_TIMEOUT
    )
    if done.returncode != 0:
        raise ClusterError(f"{program} failed:\n{done.stderr}")


def _give_to_postgres(folder: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
