"""Logs as an operator reads them: one access line per request, tied to its request id, the
signed-in user and the route template, in JSON or on the console; a 500's traceback stays in
the log and out of the response."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from tests.conftest import asgi_client
from tests.helpers import API, Api, assert_problem

AppFactory = Callable[..., Awaitable[FastAPI]]
LEAKS = ("Traceback", "SELECT", "password_hash", "/srv/", ".py", "line 42")


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """What the app logs, as it writes it (to stderr, which an app built here points at).

    The root logger is put back before the capture closes: the app's background jobs keep
    logging until its shutdown, and other tests' apps must not write into this capture.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield capsys
    root.handlers, root.level = handlers, level


def json_lines(output: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert all(isinstance(line, dict) for line in lines), output
    return lines


def access_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        line
        for line in lines
        if (line.get("logger"), line.get("event")) == ("primetrade.access", "request")
    ]


async def test_a_request_writes_one_json_access_line_with_its_id_user_and_route(
    app_factory: AppFactory, stderr: pytest.CaptureFixture[str]
) -> None:
    application = await app_factory(log_format="json", access_log=True, log_level="INFO")
    async with asgi_client(application) as http:
        api = Api(http)
        alice = await api.account()
        task = await api.create_task(alice)
        stderr.readouterr()  # the sign-up's lines: only the next request's count
        response = await http.get(f"{API}/tasks/{task['id']}", headers=alice.headers)
    assert response.status_code == 200, response.text

    [line] = access_lines(json_lines(stderr.readouterr().err))
    assert line["event"] == "request"
    assert line["level"] == "info"
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["user_id"] == alice.id
    assert line["route"] == "/api/v1/tasks/{task_id}"
    assert task["id"] not in json.dumps(line)
    assert (line["method"], line["status"]) == ("GET", 200)
    assert isinstance(line["duration_ms"], int | float)
    assert line["duration_ms"] >= 0


async def test_an_anonymous_refusal_is_logged_with_its_status_and_no_user(
    app_factory: AppFactory, stderr: pytest.CaptureFixture[str]
) -> None:
    application = await app_factory(log_format="json", access_log=True, log_level="INFO")
    async with asgi_client(application) as http:
        response = await http.get(f"{API}/tasks/{'0' * 32}", headers={"X-Request-ID": "anon-1"})
    assert response.status_code == 401, response.text

    [line] = access_lines(json_lines(stderr.readouterr().err))
    assert line["request_id"] == response.headers["x-request-id"] == "anon-1"
    assert (line["route"], line["status"], line["user_id"]) == (
        "/api/v1/tasks/{task_id}",
        401,
        None,
    )


async def test_the_console_format_is_not_json_but_carries_the_request_id(
    app_factory: AppFactory, stderr: pytest.CaptureFixture[str]
) -> None:
    application = await app_factory(log_format="console", access_log=True, log_level="INFO")
    async with asgi_client(application) as http:
        response = await http.get("/health", headers={"X-Request-ID": "console-trace-7"})
    assert response.status_code == 200, response.text

    output = stderr.readouterr().err
    [line] = [text for text in output.splitlines() if "[primetrade.access]" in text]
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
    assert "request_id=console-trace-7" in line
    assert "route=/health" in line
    assert "status=200" in line


async def test_a_500_logs_the_traceback_and_shows_the_client_none_of_it(
    app_factory: AppFactory, stderr: pytest.CaptureFixture[str]
) -> None:
    application = await app_factory(log_format="json", access_log=True, log_level="INFO")

    async def explode() -> None:
        raise RuntimeError('SELECT password_hash FROM users -- File "/srv/app/x.py", line 42')

    application.add_api_route(f"{API}/explode", explode)
    async with asgi_client(application) as http:
        response = await http.get(f"{API}/explode", headers={"X-Request-ID": "boom-500"})

    problem = assert_problem(response, 500, "internal_error")
    assert problem["detail"] == "An unexpected error occurred."
    for leak in LEAKS:
        assert leak not in response.text, leak
    lines = [line for line in json_lines(stderr.readouterr().err) if line.get("request_id")]
    [error] = [line for line in lines if line["event"] == "unhandled_error"]
    assert error["level"] == "error"
    assert error["request_id"] == "boom-500"
    assert error["exception"].startswith("Traceback")
    assert "RuntimeError: SELECT password_hash FROM users" in error["exception"]
    assert "explode" in error["exception"]  # the frame that raised
    [access] = access_lines(lines)
    assert (access["event"], access["status"], access["route"]) == (
        "request",
        500,
        f"{API}/explode",
    )
