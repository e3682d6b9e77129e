"""A real `primetrade serve` process for the browser tests, and a client to its API.

The server runs from a temporary directory with its own database, mail folder and export
folder; `serve` applies the migrations before it listens.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import API, PASSWORD
from tests.jobsupport import settings_env
from tests.pgserver import free_port
from tests.supervisor import Supervisor

PRIMETRADE = str(Path(sys.executable).parent / "primetrade")
START_TIMEOUT = 60.0
MAIL_WAIT_STEPS = 100  # of 0.1 s: the embedded job runner sends within a second or two
_numbers = itertools.count(1)


def unique_email(prefix: str = "person") -> str:
    return f"{prefix}{next(_numbers)}-{time.monotonic_ns() % 10**8}@example.com"


@dataclass
class ServedApp:
    url: str
    root: Path
    env: dict[str, str]

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=f"{self.url}{API}", timeout=20)

    async def register(self, email: str | None = None, **extra: Any) -> str:
        """A new account (verification is off here); its email."""
        email = email or unique_email()
        async with self.http() as http:
            body = {"email": email, "password": PASSWORD, **extra}
            response = await http.post("/auth/register", json=body)
        assert response.status_code == 201, response.text
        return email

    async def bearer(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        """Headers signed in through the JSON login, as another device would be."""
        async with self.http() as http:
            response = await http.post("/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def create_task(self, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
        async with self.http() as http:
            response = await http.post("/tasks", json=fields, headers=headers)
        assert response.status_code == 201, response.text
        task: dict[str, Any] = response.json()
        return task

    async def create_admin(self, email: str, full_name: str = "Ada Admin") -> None:
        process = await asyncio.create_subprocess_exec(
            *(PRIMETRADE, "create-admin", "--email", email, "--full-name", full_name),
            env={**self.env, "ADMIN_PASSWORD": PASSWORD},
            cwd=self.root,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        assert process.returncode == 0, output.decode()

    async def link_in_mail(self, address: str, page: str) -> str:
        """The path of the newest `page` link (e.g. `/verify-email?token=…`) sent to `address`."""
        pattern = re.compile(rf"https?://[^/\s]+(/{page}\?token=[\w-]+)")
        for _ in range(MAIL_WAIT_STEPS):
            links = [found for body in self.mails_to(address) for found in pattern.findall(body)]
            if links:
                return str(links[-1])
            await asyncio.sleep(0.1)
        raise AssertionError(f"no {page} link was mailed to {address}")

    def mails_to(self, address: str) -> list[str]:
        """The plain-text bodies of the emails written for `address`, oldest first."""
        bodies = []
        for path in sorted((self.root / "mail").glob("*.eml")):
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            if message["To"] == address:
                part = message.get_body(preferencelist=("plain",))
                assert part is not None, path
                bodies.append(str(part.get_content()))
        return bodies


@contextmanager
def serve(root: Path, *, database_url: str | None = None, **settings: Any) -> Iterator[ServedApp]:
    """`primetrade serve` on a free port with these settings, stopped afterwards."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    defaults = {
        "database_url": database_url or f"sqlite+aiosqlite:///{root / 'e2e.db'}",
        "mail_url": f"file://{root / 'mail'}",
        "export_dir": root / "exports",
        "public_url": f"http://127.0.0.1:{port}",
        "rate_limit_enabled": False,
        "access_log": False,
    }
    env = settings_env(**{**defaults, **settings})
    processes = Supervisor(root / "logs", root, {})
    command = [PRIMETRADE, "serve", "--host", "127.0.0.1", "--port", str(port)]
    processes.spawn("serve", command, env)
    try:
        processes.wait_for_port("serve", port, START_TIMEOUT)
        app = ServedApp(f"http://127.0.0.1:{port}", root, env)
        processes.wait_ready("serve", app.url, START_TIMEOUT)
        yield app
    finally:
        processes.stop_all()
