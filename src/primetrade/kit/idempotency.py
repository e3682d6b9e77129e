"""Idempotency keys: a retried create with the same key replays the first answer.

Keys are scoped to the caller, compared with a hash of the request body, and kept for a set
time. The stored answer is written in the same transaction as the change it describes, so a
replay never refers to something that was rolled back.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import JSON, Index, LargeBinary, String, Uuid, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from starlette.requests import Request
from starlette.responses import Response

from primetrade.kit.db import Base, UTCDateTime, utcnow
from primetrade.kit.errors import Conflict, InvalidInput

_REPLAYED_HEADERS = {"content-type", "location", "etag"}


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (Index(None, "expires_at"),)

    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column()
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    headers: dict[str, str]
    body: bytes


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """A hash of the request; JSON bodies are compared by content, not by their spelling."""
    return hashlib.sha256(
        b"\0".join([method.encode(), path.encode(), _canonical(body)])
    ).hexdigest()


def _canonical(body: bytes) -> bytes:
    # A client retrying with another serialiser (key order, spacing) sends the same request.
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        return body


async def lookup(
    session: AsyncSession, owner_id: uuid.UUID, key: str, fingerprint: str
) -> StoredResponse | None:
    """The stored answer for this key, None if unused, 422 if used for another request."""
    row = await session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.owner_id == owner_id,
            IdempotencyKey.key == key,
            IdempotencyKey.expires_at > utcnow(),
        )
    )
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise InvalidInput(
            "This Idempotency-Key was already used with a different request.",
            field=["header", "Idempotency-Key"],
        )
    return StoredResponse(row.status_code, dict(row.headers), row.body)


async def remember(
    session: AsyncSession,
    owner_id: uuid.UUID,
    key: str,
    fingerprint: str,
    response: StoredResponse,
    *,
    ttl_seconds: int,
) -> None:
    """Store the answer beside the change; a concurrent twin loses with 409 and can retry."""
    now = utcnow()
    # This key, if expired, makes way for the new answer; the owner's other expired keys go
    # too (found through the primary key's owner prefix), so keys never pile up.
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.owner_id == owner_id, IdempotencyKey.expires_at <= now
        )
    )
    session.add(
        IdempotencyKey(
            owner_id=owner_id,
            key=key,
            request_hash=fingerprint,
            status_code=response.status_code,
            headers=response.headers,
            body=response.body,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
    )
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "A request with this Idempotency-Key is in progress; retry shortly."
        ) from exc


async def purge_expired(session: AsyncSession) -> int:
    """Remove keys past their lifetime; returns how many were removed."""
    result: Any = await session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utcnow())
    )
    return int(result.rowcount or 0)


async def replay_or_run(
    session: AsyncSession,
    request: Request,
    owner_id: uuid.UUID,
    key: str | None,
    run: Callable[[], Awaitable[Response]],
    ttl_seconds: int,
) -> Response:
    """Without a key, run. With one, replay its stored answer, or run and store the answer."""
    if key is None:
        return await run()
    fingerprint = request_fingerprint(request.method, request.url.path, await request.body())
    stored = await lookup(session, owner_id, key, fingerprint)
    if stored is not None:
        headers = {**stored.headers, "Idempotent-Replayed": "true"}
        return Response(stored.body, stored.status_code, headers=headers)
    response = await run()
    kept = {k: v for k, v in response.headers.items() if k.lower() in _REPLAYED_HEADERS}
    await remember(
        session,
        owner_id,
        key,
        fingerprint,
        StoredResponse(response.status_code, kept, bytes(response.body)),
        ttl_seconds=ttl_seconds,
    )
    return response
