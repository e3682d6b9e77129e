"""JSON responses written straight from a validated model."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Response
from pydantic import BaseModel


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
