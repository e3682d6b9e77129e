"""A private PostgreSQL server on a free loopback port, built from the machine's binaries.

For tests that must stop and start the database under a running app: the shared server is
never touched. Running as root, every PostgreSQL command runs as the `postgres` user, which
must own the data folder.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

BINARY_GLOB = "/usr/lib/postgresql/*/bin"
COMMAND_TIMEOUT = 60


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL bin folder that has initdb and pg_ctl."""
    candidates = sorted(glob.glob(BINARY_GLOB), key=lambda p: int(Path(p).parent.name))
    for folder in reversed(candidates):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path and shutil.which("initdb") else None


def unavailable_reason() -> str | None:
    """Why a private server cannot be made here, or None when it can."""
    if find_bindir() is None:
        return f"no PostgreSQL binaries in {BINARY_GLOB} or on PATH"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root but there is no `postgres` user to run the server as"
        if shutil.which("runuser") is None:
            return "running as root but `runuser` is missing"
    return None


LOWEST_PORT = 20000


def free_port() -> int:
    """A loopback port nothing is bound to, below the kernel's ephemeral range.

    The port is chosen now and bound later: by a server started after this, or again by a
    proxy that was stopped and starts anew. A port from the ephemeral range (what binding to
    port 0 gives) may meanwhile become the local end of any outgoing connection, and the
    later bind fails with "address already in use"; below that range only an explicit bind
    can take it, and each is chosen at random so two test processes rarely meet.
    """
    ceiling = _ephemeral_low()
    for _ in range(100):
        port = LOWEST_PORT + secrets.randbelow(ceiling - LOWEST_PORT)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free loopback port between {LOWEST_PORT} and {ceiling}")


def _ephemeral_low() -> int:
    """The first port the kernel hands out to outgoing connections (Linux; else 32768)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768
    return max(low, LOWEST_PORT + 1000)


class PrivateServer:
    """One throwaway cluster: `create()`, `start()`, `stop()`, and `destroy()` at the end."""

    def __init__(self, bindir: Path, root: Path, port: int) -> None:
        self.bindir, self.root, self.port = bindir, root, port
        self.datadir = root / "data"
        self.logfile = root / "server.log"

    @classmethod
    def create(cls) -> PrivateServer:
        """A new cluster (initdb's defaults allow streaming replicas to be made of it)."""
        bindir = find_bindir()
        assert bindir is not None, unavailable_reason()
        return cls._made(bindir, "initdb", "-A", "trust", "-U", "postgres")

    @classmethod
    def replica_of(cls, primary: PrivateServer) -> PrivateServer:
        """A streaming replica of the running `primary`, cloned by pg_basebackup; `start()` it."""
        return cls._made(
            primary.bindir,
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
            # -R writes the standby signal and primary_conninfo; -c fast skips the wait for a
            # scheduled checkpoint; --no-sync because the copy is thrown away anyway.
            *("-R", "-X", "stream", "-c", "fast", "--no-sync"),
        )

    @classmethod
    def _made(cls, bindir: Path, program: str, *args: str) -> PrivateServer:
        root = Path(tempfile.mkdtemp(prefix="primetrade-pg-"))
        server = cls(bindir, root, free_port())
        try:
            if os.geteuid() == 0:
                account = pwd.getpwnam("postgres")
                os.chown(root, account.pw_uid, account.pw_gid)
            server._run(program, "-D", str(server.datadir), *args)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return server

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start and wait until it accepts connections (on the same port every time)."""
        # A throwaway cluster: durability is not worth the fsync calls.
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.logfile)
        self._run("pg_ctl", "-D", str(self.datadir), "-l", log, "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop; `immediate` kills every backend at once, as a crash would."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def is_running(self) -> bool:
        command = self._command("pg_ctl", "-D", str(self.datadir), "status")
        done = subprocess.run(command, capture_output=True, timeout=COMMAND_TIMEOUT)  # noqa: S603
        return done.returncode == 0

    def destroy(self) -> None:
        """Stop the server if it runs and delete every file it had."""
        try:
            if self.datadir.exists() and self.is_running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.bindir / program), *args]
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def _run(self, program: str, *args: str) -> None:
        command = self._command(program, *args)
        done = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)  # noqa: S603
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stderr}\n{self.log()}"
