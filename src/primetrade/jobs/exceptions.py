"""Errors of the jobs admin API."""

from __future__ import annotations

from primetrade.kit.errors import Conflict, NotFound


class DeadJobNotFound(NotFound):
    code, title = "dead_job_not_found", "Dead job not found"


class AlreadyRetried(Conflict):
    code, title = "dead_job_already_retried", "Dead job already retried"
