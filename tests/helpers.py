"""Small factories that drive the public API the way a client would."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import httpx

PASSWORD = "Correct-horse-9"
API = "/api/v1"
PROBLEM = "application/problem+json"
_counter = itertools.count(1)


@dataclass
class Account:
    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Api:
    client: httpx.AsyncClient

    async def register(
        self, email: str | None = None, password: str = PASSWORD, **extra: Any
    ) -> dict[str, Any]:
        email = email or f"user{next(_counter)}@example.com"
        response = await self.client.post(
            f"{API}/auth/register", json={"email": email, "password": password, **extra}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return await self.client.post(
            f"{API}/auth/login", json={"email": email, "password": password}
        )

    async def account(
        self, email: str | None = None, password: str = PASSWORD, **extra: Any
    ) -> Account:
        """A registered, signed-in user (`extra`: more registration fields)."""
        user = await self.register(email, password, **extra)
        response = await self.login(user["email"], password)
        assert response.status_code == 200, response.text
        tokens = response.json()
        return Account(
            id=user["id"],
            email=user["email"],
            password=password,
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )

    async def create_task(self, who: Account, **fields: Any) -> dict[str, Any]:
        payload = {"title": f"Task {next(_counter)}", **fields}
        response = await self.client.post(f"{API}/tasks", json=payload, headers=who.headers)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def list_tasks(self, who: Account, **params: Any) -> httpx.Response:
        return await self.client.get(f"{API}/tasks", params=params, headers=who.headers)


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (and `code`); its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer ")
    return body


def error_fields(body: dict[str, Any]) -> set[str]:
    """The fields a 422 problem names."""
    return {str(error["loc"][-1]) for error in body["errors"]}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
