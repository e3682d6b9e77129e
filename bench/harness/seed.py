"""Accounts and tasks made through the public API, as a client would make them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

API = "/api/v1"
PASSWORD = "Bench-password-1"
CONCURRENCY = 8

VERBS = (
    "Review",
    "Draft",
    "Update",
    "Prepare",
    "Fix",
    "Plan",
    "Migrate",
    "Audit",
    "Schedule",
    "Write",
    "Renew",
    "Clean up",
    "Test",
)
OBJECTS = (
    "quarterly budget",
    "onboarding checklist",
    "release notes",
    "customer invoices",
    "database backups",
    "marketing plan",
    "security audit findings",
    "team offsite agenda",
    "API documentation",
    "hiring pipeline",
    "vendor contracts",
    "support rota",
    "dashboard metrics",
    "travel expenses",
    "sprint retrospective",
    "pricing page",
    "newsletter",
)
CONTEXTS = (
    "before the Friday sync with finance",
    "so the new starters have everything on day one",
    "and share the draft with the leadership team",
    "after the incident review last week",
    "with notes from the customer calls",
    "for the board meeting next month",
    "keeping the old version for reference",
    "and ask legal to double-check the wording",
)
TAGS = ("finance", "ops", "docs", "hiring", "customers", "security", "q3", "urgent")
PRIORITIES = ("low", "medium", "high", "urgent")


@dataclass(frozen=True)
class Account:
    email: str
    password: str
    token: str
    task_ids: tuple[str, ...]


@dataclass(frozen=True)
class Seeded:
    readers: tuple[Account, ...]  # like the ceiling's owners: each has `tasks_per_user` tasks
    writer: Account  # target of the create and update scenarios
    signer: Account  # whose credentials the login scenarios send


def task_payload(user: int, index: int, now: datetime) -> dict[str, object]:
    """A plausible task, different for every (user, index), from a small vocabulary."""
    verb = VERBS[(index + user) % len(VERBS)]
    thing = OBJECTS[(index * 7 + user * 3) % len(OBJECTS)]
    context = CONTEXTS[(index + 2 * user) % len(CONTEXTS)]
    tags = [TAGS[(index + user) % len(TAGS)], TAGS[(index * 3 + 1) % len(TAGS)]]
    return {
        "title": f"{verb} the {thing}",
        "description": f"{verb} the {thing} {context}. Item {index + 1} of the plan.",
        "priority": PRIORITIES[(index + user) % len(PRIORITIES)],
        "tags": tags,
        "due_at": (now + timedelta(days=1 + (index * 5 + user) % 40, hours=9))
        .isoformat()
        .replace("+00:00", "Z"),
    }


async def _post(
    client: httpx.AsyncClient, path: str, json: object, token: str | None = None
) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(API + path, json=json, headers=headers)
    if response.status_code not in (200, 201):
        raise RuntimeError(f"POST {path} -> {response.status_code}: {response.text[:500]}")
    body: dict[str, object] = response.json()
    return body


async def login(client: httpx.AsyncClient, email: str, password: str) -> str:
    pair = await _post(client, "/auth/login", {"email": email, "password": password})
    return str(pair["access_token"])


async def _account(
    client: httpx.AsyncClient,
    gate: asyncio.Semaphore,
    label: str,
    user: int,
    tasks: int,
    *,
    in_order: bool = True,
) -> Account:
    email = f"bench-{label}@example.com"
    async with gate:
        await _post(
            client,
            "/auth/register",
            {"email": email, "password": PASSWORD, "full_name": f"Bench {label.title()}"},
        )
        token = await login(client, email, PASSWORD)
    now = datetime.now(UTC)

    async def create(index: int) -> str:
        async with gate:
            task = await _post(client, "/tasks", task_payload(user, index, now), token)
        return str(task["id"])

    if in_order:  # one at a time, so that created_at order matches the index order
        ids = [await create(index) for index in range(tasks)]
    else:
        ids = list(await asyncio.gather(*(create(index) for index in range(tasks))))
    return Account(email=email, password=PASSWORD, token=token, task_ids=tuple(ids))


async def seed(base_url: str, users: int, tasks_per_user: int, writer_tasks: int) -> Seeded:
    """`users` readers with `tasks_per_user` tasks each, a writer, and an account to sign in as."""
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0, limits=limits) as client:
        jobs = [_account(client, gate, f"user-{n:02d}", n, tasks_per_user) for n in range(users)]
        jobs.append(_account(client, gate, "writer", users, writer_tasks, in_order=False))
        jobs.append(_account(client, gate, "signer", users + 1, 0))
        accounts = await asyncio.gather(*jobs)
    return Seeded(readers=tuple(accounts[:users]), writer=accounts[users], signer=accounts[-1])


async def fetch_items(base_url: str, token: str, params: dict[str, str | int]) -> int:
    """How many tasks the first page of the user's list has with these query parameters."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
        response = await client.get(
            API + "/tasks", params=params, headers={"Authorization": f"Bearer {token}"}
        )
    response.raise_for_status()
    return len(response.json()["items"])
