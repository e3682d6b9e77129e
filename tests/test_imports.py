"""Imports: row-by-row validation and its report, all-or-nothing, limits, and the round trip
from an export's format."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from primetrade.exports.files import CSV_FIELDS
from tests.conftest import asgi_client
from tests.helpers import API, Account, Api

IMPORTS = f"{API}/imports"
COMPARED = ("title", "description", "status", "priority", "due_at", "tags")


def as_csv(rows: list[dict[str, Any]], fields: tuple[str, ...] = CSV_FIELDS) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        cells = {name: row.get(name) for name in fields}
        cells["tags"] = " ".join(row.get("tags", []))
        writer.writerow({name: "" if value is None else value for name, value in cells.items()})
    return buffer.getvalue().encode()


async def post_json(client: httpx.AsyncClient, who: Account, rows: Any, **params: Any) -> Any:
    return await client.post(IMPORTS, json=rows, params=params, headers=who.headers)


async def test_valid_rows_are_created_and_invalid_ones_reported(client: Any, api: Api) -> None:
    who = await api.account()
    rows = [
        {"title": "Plan Q3", "priority": "high", "tags": ["Work Items"]},
        {"title": "", "status": "sleeping"},
        {"title": "Ship", "due_at": "2030-01-01T09:00:00+02:00"},
        {"title": "Extra", "colour": "red"},
        "not an object",
    ]
    response = await post_json(client, who, rows)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["accepted"] == 2
    assert [r["row"] for r in report["rejected"]] == [2, 4, 5]
    assert {e["field"] for e in report["rejected"][0]["errors"]} == {"title", "status"}
    assert report["rejected"][1]["errors"][0]["field"] == "colour"
    listed = (await api.list_tasks(who, sort="created_at")).json()["items"]
    assert [task["id"] for task in listed] == report["created_ids"]
    assert listed[0]["tags"] == ["work-items"]
    assert listed[1]["due_at"] == "2030-01-01T07:00:00Z"


async def test_all_or_nothing_creates_nothing_when_a_row_is_rejected(client: Any, api: Api) -> None:
    who = await api.account()
    rows = [{"title": "Fine"}, {"title": "x" * 201}]
    response = await post_json(client, who, rows, all_or_nothing="true")
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "import_rejected"
    assert problem["report"]["accepted"] == 1
    assert problem["report"]["rejected"][0]["row"] == 2
    assert (await api.list_tasks(who)).json()["items"] == []
    fine = await post_json(client, who, rows[:1], all_or_nothing="true")
    assert fine.status_code == 200
    assert len(fine.json()["created_ids"]) == 1


async def test_csv_body_and_multipart_upload(client: Any, api: Api) -> None:
    who = await api.account()
    body = as_csv([{"title": "From CSV", "tags": ["a", "b"], "priority": "urgent"}])
    raw = await client.post(
        IMPORTS, content=body, headers={**who.headers, "Content-Type": "text/csv"}
    )
    assert raw.status_code == 200, raw.text
    assert raw.json()["accepted"] == 1
    files = {"file": ("tasks.csv", as_csv([{"title": "Uploaded"}]), "text/csv")}
    upload = await client.post(IMPORTS, files=files, headers=who.headers)
    assert upload.status_code == 200, upload.text
    titles = {task["title"] for task in (await api.list_tasks(who)).json()["items"]}
    assert titles == {"From CSV", "Uploaded"}
    created = (await api.list_tasks(who, priority="urgent")).json()["items"]
    assert created[0]["tags"] == ["a", "b"]


async def test_unsupported_type_and_unreadable_files(client: Any, api: Api) -> None:
    who = await api.account()
    plain = await client.post(
        IMPORTS, content=b"title\nx", headers={**who.headers, "Content-Type": "text/plain"}
    )
    assert plain.status_code == 415
    broken = await client.post(
        IMPORTS, content=b"[{", headers={**who.headers, "Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["code"] == "import_unreadable"
    not_a_list = await post_json(client, who, {"title": "x"})
    assert not_a_list.json()["code"] == "import_unreadable"
    no_title = await client.post(
        IMPORTS, content=b"name\nx\n", headers={**who.headers, "Content-Type": "text/csv"}
    )
    assert no_title.status_code == 422
    assert no_title.json()["code"] == "import_unreadable"


@pytest.fixture
async def small_limits(app_factory: Any) -> httpx.AsyncClient:
    limited: FastAPI = await app_factory(import_max_bytes=200, import_max_rows=3)
    return asgi_client(limited)


async def test_size_and_row_limits_are_413(small_limits: httpx.AsyncClient) -> None:
    async with small_limits as client:
        who = await Api(client).account()
        big = await post_json(client, who, [{"title": "x" * 150}, {"title": "y" * 150}])
        assert big.status_code == 413
        assert big.json()["code"] == "import_too_large"
        files = {"file": ("t.json", b"[" + b" " * 300 + b"]", "application/json")}
        upload = await client.post(IMPORTS, files=files, headers=who.headers)
        assert upload.status_code == 413
        many = await post_json(client, who, [{"title": str(n)} for n in range(4)])
        assert many.status_code == 413
        assert (await Api(client).list_tasks(who)).json()["items"] == []


@pytest.mark.parametrize("file_format", ["csv", "json"])
async def test_an_export_imports_back_as_equivalent_tasks(
    client: Any, api: Api, file_format: str
) -> None:
    """The export's row format, read back: the same tasks in substance (new ids and times)."""
    source, target = await api.account(), await api.account()
    await api.create_task(source, title='Quote "this", and a comma', tags=["x", "y,z"])
    await api.create_task(
        source, title="Done one", status="done", description="two\nlines", priority="low"
    )
    await api.create_task(source, title="Dated", due_at="2031-05-06T07:08:09Z")
    exported = (await api.list_tasks(source)).json()["items"]
    if file_format == "json":
        response = await post_json(client, target, exported)
    else:
        headers = {**target.headers, "Content-Type": "text/csv"}
        response = await client.post(IMPORTS, content=as_csv(exported), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 3
    imported = (await api.list_tasks(target)).json()["items"]

    def essence(tasks: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted(tuple(str(task[name]) for name in COMPARED) for task in tasks)

    assert essence(imported) == essence(exported)
    assert all(task["completed_at"] for task in imported if task["status"] == "done")
