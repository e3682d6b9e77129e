"""The uploaded import file: its bytes and format, from a raw body or a multipart form."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import UploadFile

from primetrade.imports.exceptions import ImportTooLarge, UnsupportedImport
from primetrade.imports.schemas import ImportFormat
from primetrade.runtime import RuntimeDep

_MEDIA_TYPES = {"text/csv": ImportFormat.csv, "application/json": ImportFormat.json}
_SUFFIXES = {"csv": ImportFormat.csv, "json": ImportFormat.json}


async def get_import_file(request: Request, runtime: RuntimeDep) -> tuple[bytes, ImportFormat]:
    """At most IMPORT_MAX_BYTES of CSV or JSON (413 beyond, 415 for anything else)."""
    return await _read_upload(request, runtime.settings.import_max_bytes)


ImportFile = Annotated[tuple[bytes, ImportFormat], Depends(get_import_file)]


async def _read_upload(request: Request, max_bytes: int) -> tuple[bytes, ImportFormat]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        return await _read_form(request, max_bytes)
    file_format = _MEDIA_TYPES.get(media_type)
    if file_format is None:
        raise UnsupportedImport()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
    return bytes(body), file_format


async def _read_form(request: Request, max_bytes: int) -> tuple[bytes, ImportFormat]:
    # As a context manager, so the spooled upload is closed whatever happens.
    async with request.form() as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise UnsupportedImport()
        file_format = _upload_format(upload)
        data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return data, file_format


def _upload_format(upload: UploadFile) -> ImportFormat:
    """By the part's media type, else by the file name's extension."""
    media_type = (upload.content_type or "").split(";")[0].strip().lower()
    suffix = (upload.filename or "").lower().rpartition(".")[2]
    file_format = _MEDIA_TYPES.get(media_type) or _SUFFIXES.get(suffix)
    if file_format is None:
        raise UnsupportedImport()
    return file_format


def _too_large(max_bytes: int) -> ImportTooLarge:
    return ImportTooLarge(f"An import file has at most {max_bytes} bytes.")
