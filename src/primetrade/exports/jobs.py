"""The export jobs: building one file, and deleting files past their lifetime."""

from __future__ import annotations

import uuid
from typing import Any

from primetrade.exports import service
from primetrade.jobs import JobContext, job
from primetrade.kit.logging import get_logger

log = get_logger(__name__)


@job(service.BUILD_JOB)
async def build_export(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Build one export (idempotent: a finished export is left alone)."""
    env = ctx.env
    export_id = uuid.UUID(payload["export_id"])
    try:
        await service.build(env.settings, env.sessions, env.read_sessions, export_id)
    except Exception as exc:
        if ctx.attempt > env.settings.job_max_retries:  # the runner dead-letters it next
            await service.mark_failed(env.sessions, export_id, repr(exc))
        raise


@job("exports.purge")
async def purge_exports(ctx: JobContext, _payload: dict[str, Any]) -> None:
    """Delete export files past EXPORT_TTL_SECONDS and mark their exports expired."""
    purged = await service.purge_expired(ctx.env.sessions, ctx.env.settings)
    log.info("exports_purged", purged=purged)
