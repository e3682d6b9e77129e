"""Liveness, readiness and metrics endpoints (outside the versioned API)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from sqlalchemy import text

from primetrade.kit.errors import problem_response, problem_responses
from primetrade.kit.logging import get_logger
from primetrade.kit.metrics import render
from primetrade.runtime import RuntimeDep

router = APIRouter(tags=["operations"])
log = get_logger(__name__)
READY_TIMEOUT_SECONDS = 2.0
# Set once, from a signal handler, when the process is asked to stop (see primetrade.server);
# a plain flag because a handler may interrupt any bytecode, even a lock holder's.
_shutting_down = False


def begin_shutdown() -> None:
    """Report not-ready from now on: the process is draining its last requests."""
    global _shutting_down
    _shutting_down = True


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up and answering."""
    return {"status": "ok"}


@router.get("/ready", responses=problem_responses(503))
async def ready(request: Request, runtime: RuntimeDep) -> Response:
    """The instance can serve traffic: it is not stopping and its database answers."""
    if _shutting_down:
        return problem_response(
            request,
            503,
            code="shutting_down",
            detail="The instance is shutting down; send requests to another one.",
        )
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            async with runtime.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("not_ready", check="database", error=type(exc).__name__)
        return problem_response(
            request,
            503,
            headers={"Retry-After": "5"},
            code="not_ready",
            detail="The database is not reachable.",
            checks={"database": "down"},
        )
    if runtime.replicas is None and runtime.redis is None:
        return Response(
            b'{"status":"ready","checks":{"database":"ok"}}', media_type="application/json"
        )
    checks: dict[str, Any] = {"database": "ok"}
    degraded = False
    if runtime.replicas is not None:
        # Replicas only take reads off the primary, which serves them when none can: a replica
        # down or behind degrades the instance but never makes it unready.
        checks["replicas"] = runtime.replicas.status()
        degraded |= any(state != "ok" for state in checks["replicas"].values())
    if runtime.redis is not None:
        # Likewise Redis: without it the database serves every request (cache bypassed,
        # general rate limits open, sign-in limits 503), so the instance stays ready.
        checks["redis"] = "ok" if await runtime.redis.ping() else "down"
        degraded |= checks["redis"] != "ok"
    body = {"status": "degraded" if degraded else "ready", "checks": checks}
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    body, content_type = render()
    return Response(body, media_type=content_type)
