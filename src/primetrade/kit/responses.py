"""JSON responses written straight from a validated model, or from the cache."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Response, status
from pydantic import BaseModel

from primetrade.kit.cache import Entry
from primetrade.kit.conditional import none_match


def model_response(
    model: BaseModel, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """`model` as JSON, serialised once by pydantic's Rust core.

    Returning the model itself would make FastAPI validate it against `response_model` again
    and serialise it a second way; the hot endpoints hand over finished bytes instead. The
    route still declares `response_model`, so the OpenAPI document is unchanged.
    """
    body = model.__pydantic_serializer__.to_json(model)
    return Response(body, status_code, headers=headers, media_type="application/json")


def entry_response(entry: Entry, if_none_match: str | None) -> Response:
    """The cached body with its ETag, or 304 when the client's copy is that one."""
    if none_match(if_none_match, entry.etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": entry.etag})
    return Response(entry.body, headers={"ETag": entry.etag}, media_type="application/json")
