"""Emails from Jinja2 templates: a subject, a text part and an HTML part per template."""

from __future__ import annotations

import hashlib
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache
from typing import Any

import jinja2

from primetrade.kit.db import utcnow


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("primetrade.mail", "templates"),
        # HTML is escaped; the subject and text parts are plain text and must not be.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def templates() -> frozenset[str]:
    """The names of the emails that can be sent (each has .subject, .txt and .html)."""
    names = environment().list_templates(extensions=["subject"])
    return frozenset(name.removesuffix(".subject") for name in names)


def render(
    template: str, context: dict[str, Any], *, sender: str, to: str, key: str
) -> EmailMessage:
    """One message; its Message-ID derives from `key`, so a resend is recognisably the same."""
    env = environment()
    subject = env.get_template(f"{template}.subject").render(context).strip()
    message = EmailMessage()
    message["Subject"] = " ".join(subject.split())
    message["From"] = sender
    message["To"] = to
    message["Date"] = format_datetime(utcnow())
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    domain = Address(addr_spec=_address_of(sender)).domain or "primetrade.local"
    message["Message-ID"] = f"<{digest}@{domain}>"
    message.set_content(env.get_template(f"{template}.txt").render(context))
    message.add_alternative(env.get_template(f"{template}.html").render(context), subtype="html")
    return message


def _address_of(sender: str) -> str:
    # "Name <a@b>" or a bare "a@b".
    return sender.rsplit("<", 1)[-1].rstrip(">").strip()
