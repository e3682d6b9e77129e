"""Account administration: search, roles, (de)activation, deletion and the last-admin guard."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from primetrade.auth.models import AuthSession
from primetrade.bootstrap import ensure_admin
from primetrade.cli import cli
from primetrade.settings import get_settings
from primetrade.tasks.models import Task
from primetrade.users import service as users_service
from primetrade.users.exceptions import LastAdmin
from primetrade.users.models import Role, User
from primetrade.users.schemas import AdminUserUpdate
from tests.helpers import API, PASSWORD, Account, Api, assert_problem, bearer

USERS = f"{API}/admin/users"
ADMIN_PASSWORD = "Admin-password-7"


async def make_admin(api: Api, app: FastAPI, email: str | None = None) -> Account:
    """A signed-in admin: registered through the API, then promoted the only way there is."""
    account = await api.account(email)
    created = await ensure_admin(app.state.runtime.settings, account.email, PASSWORD, None)
    assert created is False
    return account


@pytest.fixture
async def admin(api: Api, app: FastAPI) -> Account:
    return await make_admin(api, app, "root@example.com")


async def get_user(client: httpx.AsyncClient, who: Account, user_id: str) -> httpx.Response:
    return await client.get(f"{USERS}/{user_id}", headers=who.headers)


async def patch_user(
    client: httpx.AsyncClient, who: Account, user_id: str, **changes: Any
) -> httpx.Response:
    return await client.patch(f"{USERS}/{user_id}", json=changes, headers=who.headers)


async def list_users(client: httpx.AsyncClient, who: Account, **params: Any) -> httpx.Response:
    return await client.get(USERS, params=params, headers=who.headers)


async def list_ids(client: httpx.AsyncClient, who: Account, **params: Any) -> list[str]:
    response = await list_users(client, who, limit=100, **params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(f"{API}/users/me", headers=bearer(token))


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(f"{API}/auth/refresh", json={"refresh_token": token})


# --- the first admin ------------------------------------------------------------------------


async def test_ensure_admin_creates_an_admin_who_can_sign_in(
    api: Api, app: FastAPI, client: httpx.AsyncClient
) -> None:
    # On its own event loop, as the create-admin command runs it.
    created = await asyncio.to_thread(
        asyncio.run,
        ensure_admin(
            app.state.runtime.settings, " First@Example.com ", ADMIN_PASSWORD, "First Admin"
        ),
    )
    assert created is True
    response = await api.login("first@example.com", ADMIN_PASSWORD)
    assert response.status_code == 200, response.text
    body = (await me(client, response.json()["access_token"])).json()
    assert body["role"] == "admin"
    assert body["full_name"] == "First Admin"


async def test_ensure_admin_promotes_and_repasswords_an_account(
    api: Api, app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await api.account("promote@example.com")
    created = await ensure_admin(
        app.state.runtime.settings, "promote@example.com", ADMIN_PASSWORD, None
    )
    assert created is False
    assert (await me(client, alice.access_token)).json()["role"] == "admin"
    assert_problem(await api.login(alice.email, PASSWORD), 401, "unauthorized")
    assert (await api.login(alice.email, ADMIN_PASSWORD)).status_code == 200


async def test_ensure_admin_refuses_a_weak_password(app: FastAPI) -> None:
    with pytest.raises(ValueError, match="two kinds"):
        await ensure_admin(app.state.runtime.settings, "weak@example.com", "password", None)


async def test_create_admin_command_promotes_an_account(
    api: Api, app: FastAPI, client: httpx.AsyncClient, database_url: str
) -> None:
    alice = await api.account("cli@example.com")
    env = {"DATABASE_URL": database_url, "ADMIN_PASSWORD": ADMIN_PASSWORD}
    get_settings.cache_clear()
    try:
        result = await asyncio.to_thread(
            CliRunner().invoke, cli, ["create-admin", "--email", "CLI@example.com"], env=env
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "promoted admin cli@example.com" in result.output
    assert (await me(client, alice.access_token)).json()["role"] == "admin"


# --- listing and search ---------------------------------------------------------------------


async def test_list_users_newest_first(api: Api, client: httpx.AsyncClient, admin: Account) -> None:
    users = [await api.register() for _ in range(3)]
    response = await list_users(client, admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [item["id"] for item in body["items"]] == [
        *(user["id"] for user in reversed(users)),
        admin.id,
    ]
    assert body["next_cursor"] is None
    assert body["total"] is None
    assert all("password_hash" not in item for item in body["items"])


async def test_list_users_pages_with_a_cursor(
    api: Api, client: httpx.AsyncClient, admin: Account
) -> None:
    for _ in range(6):
        await api.register()
    everyone = await list_ids(client, admin)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = (await list_users(client, admin, **params)).json()
        assert len(body["items"]) <= 2
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == everyone
    assert len(everyone) == 7
    assert pages == 4


async def test_list_users_total_counts_every_match(
    api: Api, client: httpx.AsyncClient, admin: Account
) -> None:
    for _ in range(4):
        await api.register()
    body = (await list_users(client, admin, limit=2, include_total="true")).json()
    assert body["total"] == 5
    assert len(body["items"]) == 2


async def test_search_matches_email_and_name_case_insensitively(
    api: Api, client: httpx.AsyncClient, admin: Account
) -> None:
    by_email = await api.register("zebra.keeper@example.com")
    by_name = await api.register("plain@example.com", full_name="Zebra Fan")
    await api.register("nobody@example.com", full_name="Someone Else")
    found = await list_ids(client, admin, q="ZEBRA")
    assert sorted(found) == sorted([by_email["id"], by_name["id"]])


async def test_search_treats_wildcards_literally(
    api: Api, client: httpx.AsyncClient, admin: Account
) -> None:
    underscore = await api.register("a_b@example.com")
    await api.register("axb@example.com", full_name="100 percent")
    assert await list_ids(client, admin, q="a_b") == [underscore["id"]]
    assert await list_ids(client, admin, q="%") == []


async def test_search_total_and_pages_keep_the_filter(
    api: Api, client: httpx.AsyncClient, admin: Account
) -> None:
    wanted = [await api.register(f"team{i}@corp.example") for i in range(3)]
    await api.register("outsider@example.com")
    first = (await list_users(client, admin, q="corp", limit=2, include_total="true")).json()
    assert first["total"] == 3
    second = (
        await list_users(client, admin, q="corp", limit=2, cursor=first["next_cursor"])
    ).json()
    ids = [item["id"] for item in first["items"] + second["items"]]
    assert ids == [user["id"] for user in reversed(wanted)]
    assert second["next_cursor"] is None


async def test_filter_by_role(
    api: Api, app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    user = await api.register()
    other_admin = await make_admin(api, app)
    assert sorted(await list_ids(client, admin, role="admin")) == sorted([admin.id, other_admin.id])
    assert await list_ids(client, admin, role="user") == [user["id"]]


async def test_filter_by_active_state(api: Api, client: httpx.AsyncClient, admin: Account) -> None:
    active = await api.register()
    inactive = await api.register()
    await patch_user(client, admin, inactive["id"], is_active=False)
    assert await list_ids(client, admin, is_active="false") == [inactive["id"]]
    assert sorted(await list_ids(client, admin, is_active="true")) == sorted(
        [active["id"], admin.id]
    )


async def test_tampered_cursor_is_refused(
    api: Api, client: httpx.AsyncClient, admin: Account
) -> None:
    for _ in range(3):
        await api.register()
    cursor = (await list_users(client, admin, limit=1)).json()["next_cursor"]
    middle = len(cursor) // 2
    tampered = cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1 :]
    assert_problem(await list_users(client, admin, cursor=tampered), 400, "invalid_cursor")
    assert (await list_users(client, admin, cursor=cursor)).status_code == 200


@pytest.mark.parametrize("cursor", ["garbage", "", "eyJzIjoiIn0"])
async def test_garbage_cursor_is_refused(
    client: httpx.AsyncClient, admin: Account, cursor: str
) -> None:
    response = await list_users(client, admin, cursor=cursor)
    assert_problem(response, 400, "invalid_cursor")


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"role": "owner"}, {"is_active": "maybe"}, {"q": "x" * 201}],
    ids=["limit-0", "limit-101", "bad-role", "bad-flag", "long-q"],
)
async def test_list_rejects_invalid_parameters(
    client: httpx.AsyncClient, admin: Account, params: dict[str, Any]
) -> None:
    assert_problem(await list_users(client, admin, **params), 422, "validation_failed")


# --- one account ----------------------------------------------------------------------------


async def test_read_one_user(api: Api, client: httpx.AsyncClient, admin: Account) -> None:
    user = await api.register(full_name="Read Me")
    response = await get_user(client, admin, user["id"])
    assert response.status_code == 200
    assert response.json() == user


async def test_read_unknown_user_is_not_found(client: httpx.AsyncClient, admin: Account) -> None:
    assert_problem(await get_user(client, admin, str(uuid.uuid4())), 404, "user_not_found")


async def test_read_user_with_a_malformed_id_is_invalid(
    client: httpx.AsyncClient, admin: Account
) -> None:
    assert_problem(await get_user(client, admin, "not-a-uuid"), 422, "validation_failed")


async def test_rename_a_user(api: Api, client: httpx.AsyncClient, admin: Account) -> None:
    user = await api.register()
    response = await patch_user(client, admin, user["id"], full_name="  Renamed ")
    assert response.status_code == 200, response.text
    assert response.json()["full_name"] == "Renamed"
    assert (await get_user(client, admin, user["id"])).json()["full_name"] == "Renamed"


@pytest.mark.parametrize(
    "changes",
    [
        {"email": "new@example.com"},
        {"password_hash": "x"},
        {"role": "owner"},
        {"full_name": ""},
        {"is_active": "maybe"},
    ],
    ids=["email", "password-hash", "bad-role", "blank-name", "bad-flag"],
)
async def test_admin_update_rejects_invalid_changes(
    api: Api, client: httpx.AsyncClient, admin: Account, changes: dict[str, Any]
) -> None:
    user = await api.register()
    response = await patch_user(client, admin, user["id"], **changes)
    assert_problem(response, 422, "validation_failed")
    assert (await get_user(client, admin, user["id"])).json() == user


async def test_update_unknown_user_is_not_found(client: httpx.AsyncClient, admin: Account) -> None:
    response = await patch_user(client, admin, str(uuid.uuid4()), full_name="x")
    assert_problem(response, 404, "user_not_found")


async def test_promoted_user_gets_admin_access_at_once(
    api: Api, client: httpx.AsyncClient, admin: Account
) -> None:
    alice = await api.account()
    assert_problem(await client.get(USERS, headers=alice.headers), 403, "forbidden")
    response = await patch_user(client, admin, alice.id, role="admin")
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "admin"
    assert (await client.get(USERS, headers=alice.headers)).status_code == 200


async def test_demoted_admin_loses_admin_access_at_once(
    api: Api, app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    other = await make_admin(api, app)
    assert (await client.get(USERS, headers=other.headers)).status_code == 200
    response = await patch_user(client, admin, other.id, role="user")
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "user"
    assert_problem(await client.get(USERS, headers=other.headers), 403, "forbidden")
    # Still signed in as an ordinary user.
    assert (await me(client, other.access_token)).json()["role"] == "user"


# --- deactivation ---------------------------------------------------------------------------


async def test_deactivated_user_is_signed_out_at_once(
    api: Api, client: httpx.AsyncClient, admin: Account
) -> None:
    alice = await api.account()
    response = await patch_user(client, admin, alice.id, is_active=False)
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    assert_problem(await me(client, alice.access_token), 401, "unauthorized")
    assert_problem(await refresh(client, alice.refresh_token), 401, "unauthorized")


async def test_deactivated_user_cannot_sign_in(
    api: Api, client: httpx.AsyncClient, admin: Account
) -> None:
    alice = await api.account()
    await patch_user(client, admin, alice.id, is_active=False)
    refused = assert_problem(await api.login(alice.email), 401, "unauthorized")
    wrong = assert_problem(await api.login(alice.email, "Wrong-password-1"), 401, "unauthorized")
    unknown = assert_problem(await api.login("who@example.com"), 401, "unauthorized")
    for body in (wrong, unknown):
        assert (body["status"], body["code"], body["detail"]) == (
            refused["status"],
            refused["code"],
            refused["detail"],
        )


async def test_inactive_flag_alone_refuses_existing_tokens(
    api: Api, app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Even with its sessions left open, an inactive account's tokens stop working."""
    alice = await api.account()
    async with app.state.runtime.engine.begin() as connection:
        await connection.execute(
            update(User).where(User.id == uuid.UUID(alice.id)).values(is_active=False)
        )
    assert_problem(await me(client, alice.access_token), 401, "unauthorized")
    assert_problem(await refresh(client, alice.refresh_token), 401, "unauthorized")


async def test_reactivated_user_signs_in_again_but_old_sessions_stay_ended(
    api: Api, client: httpx.AsyncClient, admin: Account
) -> None:
    alice = await api.account()
    await patch_user(client, admin, alice.id, is_active=False)
    response = await patch_user(client, admin, alice.id, is_active=True)
    assert response.json()["is_active"] is True
    assert (await api.login(alice.email)).status_code == 200
    assert_problem(await me(client, alice.access_token), 401, "unauthorized")
    assert_problem(await refresh(client, alice.refresh_token), 401, "unauthorized")


async def test_deactivating_one_user_spares_the_others(
    api: Api, client: httpx.AsyncClient, admin: Account
) -> None:
    alice = await api.account()
    bob = await api.account()
    await patch_user(client, admin, alice.id, is_active=False)
    assert (await me(client, bob.access_token)).status_code == 200
    assert (await refresh(client, bob.refresh_token)).status_code == 200


async def test_renaming_does_not_sign_the_user_out(
    api: Api, client: httpx.AsyncClient, admin: Account
) -> None:
    alice = await api.account()
    await patch_user(client, admin, alice.id, full_name="Still Here", is_active=True)
    assert (await me(client, alice.access_token)).status_code == 200
    assert (await refresh(client, alice.refresh_token)).status_code == 200


# --- deletion -------------------------------------------------------------------------------


async def test_delete_user_removes_the_account_and_its_tasks(
    api: Api, app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    alice = await api.account()
    for _ in range(2):
        await api.create_task(alice)
    owned = await client.get(
        f"{API}/admin/tasks", params={"owner_id": alice.id}, headers=admin.headers
    )
    assert len(owned.json()["items"]) == 2
    response = await client.delete(f"{USERS}/{alice.id}", headers=admin.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await get_user(client, admin, alice.id), 404, "user_not_found")
    owned = await client.get(
        f"{API}/admin/tasks", params={"owner_id": alice.id}, headers=admin.headers
    )
    assert owned.json()["items"] == []
    async with app.state.runtime.engine.connect() as connection:
        for model, column in ((Task, Task.owner_id), (AuthSession, AuthSession.user_id)):
            count = await connection.scalar(
                select(func.count()).select_from(model).where(column == uuid.UUID(alice.id))
            )
            assert count == 0, model.__name__


async def test_deleted_user_tokens_stop_working(
    api: Api, client: httpx.AsyncClient, admin: Account
) -> None:
    alice = await api.account()
    await client.delete(f"{USERS}/{alice.id}", headers=admin.headers)
    assert_problem(await me(client, alice.access_token), 401, "unauthorized")
    assert_problem(await refresh(client, alice.refresh_token), 401, "unauthorized")
    assert_problem(await api.login(alice.email), 401, "unauthorized")


async def test_deleted_users_email_can_register_again(
    api: Api, client: httpx.AsyncClient, admin: Account
) -> None:
    alice = await api.account("again@example.com")
    await client.delete(f"{USERS}/{alice.id}", headers=admin.headers)
    assert (await api.register("again@example.com"))["id"] != alice.id


async def test_delete_unknown_user_is_not_found(client: httpx.AsyncClient, admin: Account) -> None:
    response = await client.delete(f"{USERS}/{uuid.uuid4()}", headers=admin.headers)
    assert_problem(response, 404, "user_not_found")


async def test_delete_leaves_other_users_alone(
    api: Api, client: httpx.AsyncClient, admin: Account
) -> None:
    alice = await api.account()
    bob = await api.account()
    task = await api.create_task(bob)
    await client.delete(f"{USERS}/{alice.id}", headers=admin.headers)
    assert (await client.get(f"{API}/tasks/{task['id']}", headers=bob.headers)).status_code == 200


# --- the last admin -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes", [{"role": "user"}, {"is_active": False}, {"role": "user", "full_name": "X"}]
)
async def test_last_admin_cannot_lose_admin_rights(
    client: httpx.AsyncClient, admin: Account, changes: dict[str, Any]
) -> None:
    before = (await get_user(client, admin, admin.id)).json()
    response = await patch_user(client, admin, admin.id, **changes)
    assert_problem(response, 409, "last_admin")
    assert (await get_user(client, admin, admin.id)).json() == before
    assert (await refresh(client, admin.refresh_token)).status_code == 200


async def test_last_admin_cannot_be_deleted(client: httpx.AsyncClient, admin: Account) -> None:
    response = await client.delete(f"{USERS}/{admin.id}", headers=admin.headers)
    assert_problem(response, 409, "last_admin")
    assert (await get_user(client, admin, admin.id)).status_code == 200


async def test_last_active_admin_is_guarded_even_with_inactive_admins(
    api: Api, app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    dormant = await make_admin(api, app)
    await patch_user(client, admin, dormant.id, is_active=False)
    assert_problem(await patch_user(client, admin, admin.id, role="user"), 409, "last_admin")
    response = await client.delete(f"{USERS}/{admin.id}", headers=admin.headers)
    assert_problem(response, 409, "last_admin")


async def test_an_admin_can_step_down_while_another_remains(
    api: Api, app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    other = await make_admin(api, app)
    response = await patch_user(client, admin, admin.id, role="user")
    assert response.status_code == 200, response.text
    assert_problem(await client.get(USERS, headers=admin.headers), 403, "forbidden")
    # Now `other` is the last one.
    assert_problem(await patch_user(client, other, other.id, role="user"), 409, "last_admin")
    assert_problem(await patch_user(client, other, other.id, is_active=False), 409, "last_admin")


async def test_an_admin_can_be_deleted_while_another_remains(
    api: Api, app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    other = await make_admin(api, app)
    response = await client.delete(f"{USERS}/{other.id}", headers=admin.headers)
    assert response.status_code == 204
    response = await client.delete(f"{USERS}/{admin.id}", headers=admin.headers)
    assert_problem(response, 409, "last_admin")


async def test_concurrent_demotions_keep_an_admin(
    api: Api, app: FastAPI, client: httpx.AsyncClient, admin: Account, engine_name: str
) -> None:
    other = await make_admin(api, app)
    responses = await asyncio.gather(
        patch_user(client, admin, other.id, role="user"),
        patch_user(client, other, admin.id, role="user"),
    )
    assert sorted(response.status_code for response in responses) in ([200, 403], [200, 409])
    async with app.state.runtime.engine.connect() as connection:
        admins = await connection.scalar(
            select(func.count()).select_from(User).where(User.role == "admin")
        )
    assert admins == 1


@pytest.mark.parametrize("racing", ["demote", "deactivate", "delete"])
async def test_interleaved_removals_cannot_remove_every_admin(
    api: Api, app: FastAPI, admin: Account, racing: str
) -> None:
    """Two admins remove each other at once: the second must see the first and refuse."""
    other = await make_admin(api, app)
    runtime = app.state.runtime

    async def second_removal(second: AsyncSession) -> None:
        # Starts while the first removal is still uncommitted. On PostgreSQL it reads the old
        # snapshot and then meets the first one's locks; SQLite writers wait for the lock at
        # BEGIN. Either way it must end up seeing the first removal and refuse.
        actor = await users_service.get(second, uuid.UUID(other.id))
        target = await users_service.get(second, uuid.UUID(admin.id))
        if racing == "delete":
            await users_service.delete(second, target)
        else:
            change = {"demote": {"role": Role.user}, "deactivate": {"is_active": False}}[racing]
            await users_service.admin_update(second, actor, target, AdminUserUpdate(**change))

    async with runtime.sessions() as first, runtime.sessions() as second:
        actor_1 = await users_service.get(first, uuid.UUID(admin.id))
        target_1 = await users_service.get(first, uuid.UUID(other.id))
        await users_service.admin_update(first, actor_1, target_1, AdminUserUpdate(role=Role.user))
        task = asyncio.create_task(second_removal(second))
        await asyncio.sleep(0.3)  # let the second reach the database while the first is open
        await first.commit()
        with pytest.raises(LastAdmin):
            await task
        await second.rollback()
    async with runtime.engine.connect() as connection:
        rows = await connection.execute(
            select(User.id).where(User.role == Role.admin, User.is_active.is_(True))
        )
        assert [str(row.id) for row in rows] == [admin.id]


# --- who may call ---------------------------------------------------------------------------


def admin_calls(user_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", USERS, None),
        ("GET", f"{USERS}/{user_id}", None),
        ("PATCH", f"{USERS}/{user_id}", {"role": "admin"}),
        ("PATCH", f"{USERS}/{user_id}", {"is_active": False}),
        ("DELETE", f"{USERS}/{user_id}", None),
        ("GET", f"{API}/admin/tasks", None),
    ]


async def test_non_admin_is_forbidden_everywhere(
    api: Api, client: httpx.AsyncClient, admin: Account
) -> None:
    alice = await api.account()
    for method, url, body in admin_calls(admin.id) + admin_calls(alice.id):
        response = await client.request(method, url, json=body, headers=alice.headers)
        assert_problem(response, 403, "forbidden")
    assert (await get_user(client, admin, alice.id)).json()["role"] == "user"
    assert (await get_user(client, admin, admin.id)).json()["is_active"] is True


async def test_non_admin_is_forbidden_even_with_a_bad_id(
    api: Api, client: httpx.AsyncClient
) -> None:
    alice = await api.account()
    response = await client.get(f"{USERS}/not-a-uuid", headers=alice.headers)
    assert_problem(response, 403, "forbidden")


async def test_anonymous_is_unauthorized_everywhere(
    client: httpx.AsyncClient, admin: Account
) -> None:
    for method, url, body in admin_calls(admin.id):
        response = await client.request(method, url, json=body)
        assert_problem(response, 401, "unauthorized")
    assert (await get_user(client, admin, admin.id)).json()["role"] == "admin"


async def test_admin_responses_are_not_cached(
    api: Api, client: httpx.AsyncClient, admin: Account
) -> None:
    user = await api.register()
    responses = [
        await list_users(client, admin),
        await get_user(client, admin, user["id"]),
        await patch_user(client, admin, user["id"], full_name="N"),
        await client.get(USERS),
    ]
    for response in responses:
        assert response.headers["cache-control"] == "no-store", response.url
