"""Mail backends chosen by MAIL_URL: SMTP for real, a folder of .eml files or the log for
development. Each sends one fully built `EmailMessage`."""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from primetrade.kit.db import utcnow
from primetrade.kit.logging import get_logger
from primetrade.settings import Settings

log = get_logger(__name__)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
# More than any email of ours needs, and still one bounded log line should a message be huge.
LOGGED_TEXT_CHARS = 4000


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True, slots=True)
class SmtpMailer:
    """SMTP through aiosmtplib: native asyncio, so a slow server never holds a thread."""

    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None
    validate_certs: bool
    timeout: float

    async def send(self, message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            start_tls=self.start_tls,
            validate_certs=self.validate_certs,
            timeout=self.timeout,
        )


@dataclass(frozen=True, slots=True)
class ConsoleMailer:
    """Logs every message in full (development, or a container whose logs are read)."""

    async def send(self, message: EmailMessage) -> None:
        log.info(
            "mail_sent",
            to=message["To"],
            subject=message["Subject"],
            message=message.as_string(),
        )


@dataclass(frozen=True, slots=True)
class FileMailer:
    """Logs each message (with its text) and writes it as an .eml file a mail program opens."""

    folder: Path

    async def send(self, message: EmailMessage) -> None:
        path = await asyncio.to_thread(self._write, message)
        log.info(
            "mail_sent",
            to=message["To"],
            subject=message["Subject"],
            file=str(path),
            text=_readable_text(message),
        )

    def _write(self, message: EmailMessage) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(str(message["Message-ID"]).encode()).hexdigest()[:12]
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
        path = self.folder / f"{stamp}-{digest}.eml"
        # Written aside and renamed, so a reader never sees half a message.
        partial = path.with_suffix(".eml.part")
        partial.write_bytes(message.as_bytes())
        os.replace(partial, path)
        return path


def _readable_text(message: EmailMessage) -> str:
    """The plain-text body, cut to LOGGED_TEXT_CHARS (the .eml file keeps all of it)."""
    part = message.get_body(preferencelist=("plain",))
    text = str(part.get_content()) if isinstance(part, EmailMessage) else ""
    if len(text) <= LOGGED_TEXT_CHARS:
        return text
    return (
        f"{text[:LOGGED_TEXT_CHARS]}\n[{len(text) - LOGGED_TEXT_CHARS} more characters in the file]"
    )


def build_mailer(settings: Settings) -> Mailer:
    """The backend named by MAIL_URL."""
    url = urlsplit(settings.mail_url)
    if url.scheme in {"smtp", "smtps"}:
        return _smtp(settings)
    if url.scheme == "file":
        return FileMailer(Path(unquote(url.netloc + url.path)))
    if url.scheme == "console":
        return ConsoleMailer()
    raise ValueError(f"MAIL_URL scheme {url.scheme!r} is not smtp, smtps, file or console")


def _smtp(settings: Settings) -> SmtpMailer:
    url = urlsplit(settings.mail_url)
    query = {name: values[-1].lower() for name, values in parse_qs(url.query).items()}
    implicit_tls = url.scheme == "smtps"
    return SmtpMailer(
        hostname=url.hostname or "localhost",
        port=url.port or (465 if implicit_tls else 25),
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password else None,
        use_tls=implicit_tls,
        # Unset: STARTTLS whenever the server offers it; `starttls=true` insists on it.
        start_tls=None if implicit_tls else _flag(query.get("starttls")),
        validate_certs=_flag(query.get("verify")) is not False,
        timeout=settings.mail_timeout_seconds,
    )


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"MAIL_URL flag {value!r} is not true or false")
