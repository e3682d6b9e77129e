"""/admin/tasks: admins see and manage every user's tasks; nobody else can."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from primetrade.bootstrap import ensure_admin
from tests.helpers import API, PASSWORD, Account, Api, assert_problem

ADMIN_TASKS = f"{API}/admin/tasks"


@pytest.fixture
async def admin(app: Any, api: Api) -> Account:
    """A new admin account made the way the create-admin command makes one, signed in."""
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    created = await ensure_admin(app.state.runtime.settings, email, PASSWORD, None)
    assert created is True
    response = await api.login(email)
    assert response.status_code == 200, response.text
    tokens = response.json()
    me = await api.client.get(
        f"{API}/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 200, me.text
    return Account(
        id=me.json()["id"],
        email=email,
        password=PASSWORD,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )


def item_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def read_as_owner(client: httpx.AsyncClient, who: Account, task_id: str) -> httpx.Response:
    return await client.get(f"{API}/tasks/{task_id}", headers=who.headers)


# --- listing -----------------------------------------------------------------------------------


async def test_admin_lists_every_users_tasks_with_owner(api: Api, client, admin):
    alice, bob = await api.account(), await api.account()
    a = await api.create_task(alice)
    b = await api.create_task(bob)
    own = await api.create_task(admin)
    response = await client.get(ADMIN_TASKS, headers=admin.headers)
    items = {item["id"]: item for item in response.json()["items"]}
    assert response.status_code == 200, response.text
    assert set(items) == {a["id"], b["id"], own["id"]}
    assert items[a["id"]]["owner_id"] == alice.id
    assert items[b["id"]]["owner_id"] == bob.id
    assert items[own["id"]]["owner_id"] == admin.id
    assert {k: v for k, v in items[a["id"]].items() if k != "owner_id"} == a


async def test_admin_list_filters_by_owner(api: Api, client, admin):
    alice, bob = await api.account(), await api.account()
    alice_ids = [(await api.create_task(alice))["id"] for _ in range(3)]
    await api.create_task(bob)
    response = await client.get(ADMIN_TASKS, params={"owner_id": alice.id}, headers=admin.headers)
    assert item_ids(response) == alice_ids[::-1]
    nobody = await client.get(
        ADMIN_TASKS, params={"owner_id": str(uuid.uuid4())}, headers=admin.headers
    )
    assert item_ids(nobody) == []


async def test_admin_list_rejects_a_malformed_owner_id(client, admin):
    response = await client.get(ADMIN_TASKS, params={"owner_id": "bob"}, headers=admin.headers)
    assert_problem(response, 422, "validation_failed")


async def test_admin_list_takes_the_same_filters_sorts_and_search(api: Api, client, admin):
    alice, bob = await api.account(), await api.account()
    hit_a = await api.create_task(alice, title="Quarterly report", priority="high")
    await api.create_task(alice, title="Quarterly report", priority="low")
    hit_b = await api.create_task(bob, title="Report card", priority="high")
    await api.create_task(bob, title="Nothing", priority="high")
    response = await client.get(
        ADMIN_TASKS, params={"q": "report", "priority": "high"}, headers=admin.headers
    )
    assert set(item_ids(response)) == {hit_a["id"], hit_b["id"]}
    by_priority = await client.get(
        ADMIN_TASKS, params={"sort": "-priority", "include_total": "true"}, headers=admin.headers
    )
    assert by_priority.json()["total"] == 4
    ranks = [item["priority"] for item in by_priority.json()["items"]]
    assert ranks == ["high", "high", "high", "low"]


async def test_admin_pages_through_all_users(api: Api, client, admin):
    users = [await api.account() for _ in range(3)]
    made = {(await api.create_task(user))["id"] for user in users for _ in range(3)}
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2, "sort": "created_at"}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get(ADMIN_TASKS, params=params, headers=admin.headers)).json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 9
    assert set(seen) == made


async def test_admins_own_task_list_still_shows_only_their_tasks(api: Api, client, admin):
    alice = await api.account()
    await api.create_task(alice)
    own = await api.create_task(admin)
    assert item_ids(await api.list_tasks(admin)) == [own["id"]]


# --- one task ----------------------------------------------------------------------------------


async def test_admin_reads_any_task(api: Api, client, admin):
    alice = await api.account()
    task = await api.create_task(alice, title="Alice's")
    response = await client.get(f"{ADMIN_TASKS}/{task['id']}", headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"v1"'
    assert response.json() == {**task, "owner_id": alice.id}


async def test_admin_reading_an_unknown_task_is_404(client, admin):
    response = await client.get(f"{ADMIN_TASKS}/{uuid.uuid4()}", headers=admin.headers)
    assert_problem(response, 404, "task_not_found")


async def test_admin_cannot_reach_other_tasks_through_the_user_routes(api: Api, client, admin):
    alice = await api.account()
    task = await api.create_task(alice)
    assert_problem(await read_as_owner(client, admin, task["id"]), 404, "task_not_found")


async def test_admin_updates_any_task(api: Api, client, admin):
    alice = await api.account()
    task = await api.create_task(alice)
    response = await client.patch(
        f"{ADMIN_TASKS}/{task['id']}",
        json={"title": "Set by admin", "status": "done"},
        headers={**admin.headers, "If-Match": '"v1"'},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["owner_id"] == alice.id
    assert body["version"] == 2
    assert body["completed_at"] is not None
    assert response.headers["etag"] == '"v2"'
    seen_by_owner = (await read_as_owner(client, alice, task["id"])).json()
    assert seen_by_owner["title"] == "Set by admin"
    assert seen_by_owner["status"] == "done"


async def test_admin_update_with_stale_if_match_is_412(api: Api, client, admin):
    alice = await api.account()
    task = await api.create_task(alice)
    await client.patch(f"{API}/tasks/{task['id']}", json={"title": "v2"}, headers=alice.headers)
    response = await client.patch(
        f"{ADMIN_TASKS}/{task['id']}",
        json={"title": "lost"},
        headers={**admin.headers, "If-Match": '"v1"'},
    )
    assert_problem(response, 412, "version_mismatch")
    assert (await read_as_owner(client, alice, task["id"])).json()["title"] == "v2"


async def test_admin_update_validates_like_the_owners(api: Api, client, admin):
    alice = await api.account()
    task = await api.create_task(alice)
    for body in ({"title": None}, {"owner_id": admin.id}, {"priority": "extreme"}):
        response = await client.patch(
            f"{ADMIN_TASKS}/{task['id']}", json=body, headers=admin.headers
        )
        assert_problem(response, 422, "validation_failed")
    assert (await read_as_owner(client, alice, task["id"])).json() == task


async def test_admin_deletes_any_task(api: Api, client, admin):
    alice = await api.account()
    task = await api.create_task(alice)
    response = await client.delete(f"{ADMIN_TASKS}/{task['id']}", headers=admin.headers)
    assert response.status_code == 204
    assert_problem(await read_as_owner(client, alice, task["id"]), 404, "task_not_found")
    again = await client.delete(f"{ADMIN_TASKS}/{task['id']}", headers=admin.headers)
    assert_problem(again, 404, "task_not_found")


async def test_admin_delete_with_stale_if_match_is_412(api: Api, client, admin):
    alice = await api.account()
    task = await api.create_task(alice)
    await client.patch(f"{API}/tasks/{task['id']}", json={"title": "v2"}, headers=alice.headers)
    response = await client.delete(
        f"{ADMIN_TASKS}/{task['id']}", headers={**admin.headers, "If-Match": '"v1"'}
    )
    assert_problem(response, 412, "version_mismatch")
    assert (await read_as_owner(client, alice, task["id"])).status_code == 200


# --- who may ------------------------------------------------------------------------------------


def admin_calls(task_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", ADMIN_TASKS, None),
        ("GET", f"{ADMIN_TASKS}/{task_id}", None),
        ("PATCH", f"{ADMIN_TASKS}/{task_id}", {"title": "hijacked"}),
        ("DELETE", f"{ADMIN_TASKS}/{task_id}", None),
    ]


async def test_non_admins_get_403_and_change_nothing(api: Api, client):
    alice, mallory = await api.account(), await api.account()
    task = await api.create_task(alice)
    for target in (task["id"], str(uuid.uuid4())):
        for method, url, body in admin_calls(target):
            response = await client.request(method, url, json=body, headers=mallory.headers)
            assert_problem(response, 403, "forbidden")
            assert task["title"] not in response.text
    assert (await read_as_owner(client, alice, task["id"])).json() == task


async def test_owners_cannot_use_admin_routes_for_their_own_tasks(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    for method, url, body in admin_calls(task["id"]):
        response = await client.request(method, url, json=body, headers=alice.headers)
        assert_problem(response, 403, "forbidden")
    assert (await read_as_owner(client, alice, task["id"])).json() == task


async def test_anonymous_callers_get_401(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    for method, url, body in admin_calls(task["id"]):
        response = await client.request(method, url, json=body)
        assert_problem(response, 401)
        assert "www-authenticate" in response.headers
    assert (await read_as_owner(client, alice, task["id"])).json() == task


async def test_a_bad_token_gets_401(api: Api, client):
    alice = await api.account()
    task = await api.create_task(alice)
    for method, url, body in admin_calls(task["id"]):
        response = await client.request(
            method, url, json=body, headers={"Authorization": "Bearer not-a-token"}
        )
        assert_problem(response, 401)


async def test_a_promoted_account_gets_admin_access(api: Api, client, app):
    alice = await api.account()
    task = await api.create_task(alice)
    promoted = await api.account()
    assert_problem(await client.get(ADMIN_TASKS, headers=promoted.headers), 403, "forbidden")
    created = await ensure_admin(app.state.runtime.settings, promoted.email, PASSWORD, None)
    assert created is False
    response = await client.get(f"{ADMIN_TASKS}/{task['id']}", headers=promoted.headers)
    assert response.status_code == 200, response.text
    assert response.json()["owner_id"] == alice.id
