"""Email: backends chosen by MAIL_URL, Jinja2 templates and the idempotent `mail.send` job.

Services call `send_email` inside their transaction; the message goes out after commit."""

from primetrade.mail.service import send_email

__all__ = ["send_email"]
