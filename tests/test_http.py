"""HTTP behaviour every response shares: security headers, HSTS behind a trusted proxy, CORS,
compression, request ids, caching of private answers, metrics and the published docs."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from primetrade.jobs.registry import job_types
from tests.conftest import asgi_client
from tests.helpers import API, PASSWORD, Account, Api

AppFactory = Callable[..., Awaitable[FastAPI]]
TASKS = f"{API}/tasks"
ME = f"{API}/users/me"
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}


def assert_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.status_code)


# --- security headers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/health", {}, 200),
        ("GET", "/ready", {}, 200),
        ("GET", "/metrics", {}, 200),
        ("GET", "/openapi.json", {}, 200),
        ("GET", "/docs", {}, 200),
        ("GET", TASKS, {}, 401),
        ("GET", f"{API}/no-such-thing", {}, 404),
        ("GET", "/no-such-page", {}, 404),
        ("DELETE", TASKS, {}, 405),
        ("POST", TASKS, {"Content-Type": "text/plain"}, 415),
        ("GET", f"{TASKS}/not-a-uuid", {}, 422),
    ],
)
async def test_every_response_carries_the_security_headers(
    api: Api,
    client: httpx.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
) -> None:
    alice = await api.account()
    if status != 401:
        headers = {**alice.headers, **headers}
    content = b"x" if method == "POST" else None

    response = await client.request(method, path, headers=headers, content=content)

    assert response.status_code == status, response.text
    assert_security_headers(response)
    assert "strict-transport-security" not in response.headers


async def test_answers_made_by_middleware_carry_the_security_headers(
    app_factory: AppFactory,
) -> None:
    application = await app_factory(
        max_body_bytes=1024, rate_limit_enabled=True, rate_limit_anonymous="1/day"
    )
    async with asgi_client(application) as http:
        too_large = await http.post(TASKS, json={"title": "x" * 2000})
        allowed = await http.get(TASKS)
        limited = await http.get(TASKS)
    assert [r.status_code for r in (too_large, allowed, limited)] == [413, 401, 429]
    for response in (too_large, allowed, limited):
        assert_security_headers(response)


async def test_an_unexpected_500_carries_the_security_headers(app_factory: AppFactory) -> None:
    application = await app_factory()

    async def explode() -> None:
        raise RuntimeError("boom")

    application.add_api_route(f"{API}/explode", explode)
    async with asgi_client(application) as http:
        response = await http.get(f"{API}/explode")

    assert response.status_code == 500
    assert_security_headers(response)
    assert GENERATED_ID.match(response.headers["x-request-id"])


# --- HSTS -------------------------------------------------------------------------------------

PROXY = "10.20.30.40"
STRANGER = "203.0.113.9"


@pytest.mark.parametrize(
    ("peer", "forwarded_proto", "base_url", "hsts"),
    [
        pytest.param(PROXY, "https", "http://testserver", True, id="tls-at-trusted-proxy"),
        pytest.param(PROXY, None, "http://testserver", False, id="trusted-proxy-plain-http"),
        pytest.param(PROXY, "http", "http://testserver", False, id="trusted-proxy-says-http"),
        pytest.param(STRANGER, "https", "http://testserver", False, id="untrusted-peer-claims-tls"),
        pytest.param("127.0.0.1", "https", "http://testserver", False, id="localhost-untrusted"),
        pytest.param(STRANGER, None, "https://testserver", True, id="tls-terminated-here"),
    ],
)
@pytest.mark.parametrize("path", ["/health", f"{API}/no-such-thing", TASKS])
async def test_hsts_only_when_the_request_really_came_over_tls(
    app_factory: AppFactory,
    peer: str,
    forwarded_proto: str | None,
    base_url: str,
    hsts: bool,
    path: str,
) -> None:
    application = await app_factory(trusted_proxies=[PROXY])
    headers = {"X-Forwarded-Proto": forwarded_proto} if forwarded_proto else {}
    async with asgi_client(application, peer=(peer, 41000), base_url=base_url) as http:
        response = await http.get(path, headers=headers)

    if hsts:
        match = re.fullmatch(r"max-age=(\d+).*", response.headers["strict-transport-security"])
        assert match is not None
        assert int(match.group(1)) >= 365 * 24 * 3600
    else:
        assert "strict-transport-security" not in response.headers


async def test_an_app_without_trusted_proxies_believes_no_forwarded_proto(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/health", headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in response.headers


# --- CORS -------------------------------------------------------------------------------------

ORIGIN = "https://app.example.com"
FOREIGN = "https://evil.example.net"


@pytest.fixture
async def cors_app(app_factory: AppFactory) -> FastAPI:
    return await app_factory(cors_origins=[ORIGIN])


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type, if-match",
    }


async def test_a_preflight_from_an_allowed_origin_is_granted(cors_app: FastAPI) -> None:
    async with asgi_client(cors_app) as http:
        response = await http.options(TASKS, headers=preflight(ORIGIN))

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "POST", "PATCH", "DELETE"} <= methods
    allowed = response.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "content-type", "if-match"):
        assert header in allowed
    assert "origin" in response.headers["vary"].lower()
    assert_security_headers(response)


@pytest.mark.parametrize(
    ("origin", "method"),
    [(FOREIGN, "POST"), ("https://app.example.com.evil.net", "GET"), (ORIGIN, "PUT")],
)
async def test_a_preflight_from_a_foreign_origin_or_for_a_foreign_method_is_refused(
    cors_app: FastAPI, origin: str, method: str
) -> None:
    async with asgi_client(cors_app) as http:
        response = await http.options(TASKS, headers=preflight(origin, method))

    assert response.status_code == 400
    if origin != ORIGIN:
        assert "access-control-allow-origin" not in response.headers


async def test_an_actual_request_from_an_allowed_origin_can_read_the_answer(
    cors_app: FastAPI,
) -> None:
    async with asgi_client(cors_app) as http:
        alice = await Api(http).account()
        response = await http.get(TASKS, headers={**alice.headers, "Origin": ORIGIN})
        refused = await http.get(TASKS, headers={"Origin": ORIGIN})

    assert response.status_code == 200
    for answer in (response, refused):
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        exposed = answer.headers["access-control-expose-headers"].lower()
        assert {"etag", "location", "x-request-id", "retry-after"} <= {
            name.strip() for name in exposed.split(",")
        }


async def test_an_actual_request_from_a_foreign_origin_gets_no_cors_grant(
    cors_app: FastAPI,
) -> None:
    async with asgi_client(cors_app) as http:
        alice = await Api(http).account()
        response = await http.get(TASKS, headers={**alice.headers, "Origin": FOREIGN})

    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_without_configured_origins_no_origin_is_granted(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(TASKS, headers=preflight(ORIGIN))
    actual = await client.get("/health", headers={"Origin": ORIGIN})

    for answer in (response, actual):
        assert "access-control-allow-origin" not in answer.headers


# --- compression ------------------------------------------------------------------------------


async def test_a_large_answer_is_gzipped_when_the_client_accepts_it(
    api: Api, client: httpx.AsyncClient
) -> None:
    alice = await api.account()
    for number in range(5):
        await api.create_task(alice, title=f"Long {number}", description="words " * 100)

    zipped = await client.get(TASKS, headers={**alice.headers, "Accept-Encoding": "gzip"})
    plain = await client.get(TASKS, headers={**alice.headers, "Accept-Encoding": "identity"})

    assert zipped.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in zipped.headers["vary"].lower()
    assert zipped.num_bytes_downloaded < len(zipped.content) / 2
    assert "content-encoding" not in plain.headers
    assert plain.num_bytes_downloaded == len(plain.content)
    assert zipped.json() == plain.json()
    assert len(zipped.json()["items"]) == 5


async def test_the_spec_is_gzipped_and_a_small_answer_is_not(client: httpx.AsyncClient) -> None:
    spec = await client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
    small = await client.get("/health", headers={"Accept-Encoding": "gzip"})

    assert spec.headers["content-encoding"] == "gzip"
    assert spec.json()["openapi"].startswith("3.")
    assert "content-encoding" not in small.headers
    assert small.json() == {"status": "ok"}


# --- request ids ------------------------------------------------------------------------------


async def test_a_request_id_is_made_when_none_is_sent(client: httpx.AsyncClient) -> None:
    first = await client.get("/health")
    second = await client.get(f"{API}/no-such-thing")

    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(GENERATED_ID.match(value) for value in ids)
    assert ids[0] != ids[1]
    assert second.json()["request_id"] == ids[1]


@pytest.mark.parametrize(
    "sent",
    ["abc-123", "req_2026.11.23:edge-7", "07185da3-361b-4ea0-a938-1e696c914a0a", "A" * 128, "x"],
)
async def test_a_sane_request_id_is_echoed(client: httpx.AsyncClient, sent: str) -> None:
    response = await client.get(f"{API}/no-such-thing", headers={"X-Request-ID": sent})

    assert response.headers["x-request-id"] == sent
    assert response.json()["request_id"] == sent


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(b"A" * 129, id="too-long"),
        pytest.param(b"has spaces in it", id="spaces"),
        pytest.param(b"<script>alert(1)</script>", id="markup"),
        pytest.param(b"id;drop", id="semicolon"),
        pytest.param("caf\u00e9".encode("latin-1"), id="non-ascii"),
        pytest.param(b"", id="empty"),
    ],
)
async def test_a_garbage_request_id_is_replaced(client: httpx.AsyncClient, sent: bytes) -> None:
    response = await client.get(f"{API}/no-such-thing", headers={b"X-Request-ID": sent})

    replaced = response.headers["x-request-id"]
    assert GENERATED_ID.match(replaced)
    assert response.json()["request_id"] == replaced


# --- caching of private answers ---------------------------------------------------------------


async def test_auth_and_account_answers_are_never_stored(
    api: Api, client: httpx.AsyncClient
) -> None:
    email = "private@example.com"
    answers = {
        "register": await client.post(
            f"{API}/auth/register", json={"email": email, "password": PASSWORD}
        ),
        "login": await api.login(email),
        "failed login": await api.login(email, "Wrong-password-1"),
    }
    tokens = answers["login"].json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    answers["refresh"] = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    answers["token form"] = await client.post(
        f"{API}/auth/token", data={"username": email, "password": PASSWORD}
    )
    answers["me"] = await client.get(ME, headers=bearer)
    answers["me without token"] = await client.get(ME)
    answers["me changed"] = await client.patch(ME, json={"full_name": "P"}, headers=bearer)

    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {
        "register": 201,
        "login": 200,
        "failed login": 401,
        "refresh": 200,
        "token form": 200,
        "me": 200,
        "me without token": 401,
        "me changed": 200,
    }
    for name, answer in answers.items():
        assert answer.headers.get("cache-control") == "no-store", name


# --- metrics ----------------------------------------------------------------------------------


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in an exposition text (0 when it is not there yet)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return 0.0


async def test_every_job_type_is_on_metrics_before_it_first_runs(client: httpx.AsyncClient) -> None:
    """The server runs the jobs itself (no broker): each type's series exist from start-up."""
    text = await scrape(client)
    by_name: dict[str, set[tuple[str, ...]]] = {}
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if "job_type" in found.labels:
                key = (found.labels["job_type"], found.labels.get("outcome", ""))
                by_name.setdefault(found.name, set()).add(key)
    types = job_types()
    outcomes = {(t, o) for t in types for o in ("ok", "error", "dead")}
    assert outcomes <= by_name["job_duration_seconds_count"]
    for name in ("job_failures_total", "jobs_dead_lettered_total"):
        assert {(t, "") for t in types} <= by_name[name], name


def requests_seen(text: str, route: str, method: str, status: str) -> float:
    return sample(
        text, "http_request_duration_seconds_count", route=route, method=method, status=status
    )


async def test_request_metrics_are_labelled_by_route_template_never_by_raw_ids(
    api: Api, client: httpx.AsyncClient
) -> None:
    alice, bob = await api.account(), await api.account()
    tasks = [await api.create_task(alice) for _ in range(2)]
    stray = uuid.uuid4()
    template = f"{API}/tasks/{{task_id}}"
    before = await scrape(client)

    for task in tasks:
        assert (await client.get(f"{TASKS}/{task['id']}", headers=alice.headers)).is_success
    hidden = await client.get(f"{TASKS}/{tasks[0]['id']}", headers=bob.headers)
    assert hidden.status_code == 404
    assert (await client.get(f"{API}/no-such-thing/{stray}")).status_code == 404
    after = await scrape(client)

    assert (
        requests_seen(after, template, "GET", "200") - requests_seen(before, template, "GET", "200")
        == 2
    )
    assert (
        requests_seen(after, template, "GET", "404") - requests_seen(before, template, "GET", "404")
        == 1
    )
    assert requests_seen(after, "unmatched", "GET", "404") > requests_seen(
        before, "unmatched", "GET", "404"
    )
    for raw in [*(task["id"] for task in tasks), str(stray), alice.id, bob.id]:
        assert raw not in after


async def test_created_tasks_are_counted_once_each_and_only_when_stored(
    api: Api, client: httpx.AsyncClient
) -> None:
    alice: Account = await api.account()
    before = sample(await scrape(client), "tasks_created_total")

    await api.create_task(alice)
    keyed = {**alice.headers, "Idempotency-Key": "create-once"}
    first = await client.post(TASKS, json={"title": "Retried"}, headers=keyed)
    replay = await client.post(TASKS, json={"title": "Retried"}, headers=keyed)
    invalid = await client.post(TASKS, json={"title": ""}, headers=alice.headers)
    anonymous = await client.post(TASKS, json={"title": "Nobody"})

    assert [first.status_code, replay.status_code] == [201, 201]
    assert replay.json()["id"] == first.json()["id"]
    assert [invalid.status_code, anonymous.status_code] == [422, 401]
    assert sample(await scrape(client), "tasks_created_total") - before == 2


# --- docs -------------------------------------------------------------------------------------


async def test_the_interactive_docs_are_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in response.text
    assert "/openapi.json" in response.text


async def test_the_spec_describes_the_api_and_its_problems(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    spec: dict[str, Any] = response.json()
    assert spec["info"]["title"] == "PrimeTrade Tasks"
    assert {f"{API}/tasks", f"{API}/tasks/{{task_id}}", f"{API}/users/me"} <= set(spec["paths"])
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "code"} <= set(problem["required"])
    create = spec["paths"][f"{API}/tasks"]["post"]["responses"]
    for status in ("413", "415", "422", "429", "503"):
        assert "application/problem+json" in create[status]["content"], status
    assert "/metrics" not in spec["paths"]


async def test_head_is_answered_wherever_get_is(api: Api, client: httpx.AsyncClient) -> None:
    alice = await api.account()
    task = await api.create_task(alice)
    for path in [f"{API}/tasks/{task['id']}", f"{API}/tasks", f"{API}/users/me", "/health"]:
        get = await client.get(path, headers=alice.headers)
        head = await client.head(path, headers=alice.headers)
        assert (head.status_code, head.content) == (200, b""), path
        assert head.headers["content-length"] == get.headers["content-length"], path
        assert head.headers.get("etag") == get.headers.get("etag"), path
    # Without a token, HEAD is refused exactly like GET.
    refused = await client.head(f"{API}/tasks/{task['id']}")
    assert (refused.status_code, refused.content) == (401, b"")
    assert refused.headers["www-authenticate"].startswith("Bearer")
