"""The signed-in user's own account: profile, email change and password change."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from primetrade.users.models import User
from tests.helpers import API, PASSWORD, Account, Api, assert_problem, bearer, error_fields

ME = f"{API}/users/me"
NEW_PASSWORD = "Battery-staple-42"


async def patch_me(client: httpx.AsyncClient, who: Account, **changes: Any) -> httpx.Response:
    return await client.patch(ME, json=changes, headers=who.headers)


async def change_password(
    client: httpx.AsyncClient, who: Account, current: str, new: str
) -> httpx.Response:
    return await client.post(
        f"{ME}/password",
        json={"current_password": current, "new_password": new},
        headers=who.headers,
    )


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(f"{API}/auth/refresh", json={"refresh_token": token})


async def stored_hash(app: FastAPI, user_id: str) -> str:
    async with app.state.runtime.engine.connect() as connection:
        statement = select(User.password_hash).where(User.id == uuid.UUID(user_id))
        return str((await connection.execute(statement)).scalar_one())


# --- reading --------------------------------------------------------------------------------


async def test_me_returns_my_account(client: httpx.AsyncClient, api: Api) -> None:
    alice = await api.account("me@example.com")
    response = await client.get(ME, headers=alice.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == alice.id
    assert body["email"] == "me@example.com"
    assert body["role"] == "user"
    assert body["is_active"] is True
    assert set(body) == {
        "id",
        "email",
        "full_name",
        "role",
        "is_active",
        "created_at",
        "updated_at",
    }


async def test_me_is_per_caller(client: httpx.AsyncClient, api: Api) -> None:
    alice = await api.account()
    bob = await api.account()
    assert (await client.get(ME, headers=alice.headers)).json()["id"] == alice.id
    assert (await client.get(ME, headers=bob.headers)).json()["id"] == bob.id


async def test_me_needs_a_token(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(ME), 401, "unauthorized")


async def test_users_responses_are_not_cached(client: httpx.AsyncClient, api: Api) -> None:
    alice = await api.account()
    responses = [
        await client.get(ME, headers=alice.headers),
        await client.get(ME),
        await patch_me(client, alice, full_name="Alice"),
        await change_password(client, alice, PASSWORD, NEW_PASSWORD),
    ]
    for response in responses:
        assert response.headers["cache-control"] == "no-store", response.url


# --- profile --------------------------------------------------------------------------------


async def test_change_my_name(client: httpx.AsyncClient, api: Api) -> None:
    alice = await api.account()
    before = (await client.get(ME, headers=alice.headers)).json()
    response = await patch_me(client, alice, full_name="  Alice Liddell ")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["full_name"] == "Alice Liddell"
    assert body["updated_at"] >= before["updated_at"]
    assert (await client.get(ME, headers=alice.headers)).json()["full_name"] == "Alice Liddell"


async def test_name_change_needs_no_password(client: httpx.AsyncClient, api: Api) -> None:
    alice = await api.account()
    response = await patch_me(client, alice, full_name="No Password Needed")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
async def test_invalid_name_is_refused(client: httpx.AsyncClient, api: Api, name: str) -> None:
    alice = await api.account()
    body = assert_problem(await patch_me(client, alice, full_name=name), 422, "validation_failed")
    assert error_fields(body) == {"full_name"}


@pytest.mark.parametrize(
    "changes",
    [{"role": "admin"}, {"is_active": False}, {"password": NEW_PASSWORD}, {"id": "x"}],
)
async def test_profile_refuses_fields_it_does_not_own(
    client: httpx.AsyncClient, api: Api, changes: dict[str, Any]
) -> None:
    alice = await api.account()
    body = assert_problem(await patch_me(client, alice, **changes), 422, "validation_failed")
    assert error_fields(body) == set(changes)
    me = (await client.get(ME, headers=alice.headers)).json()
    assert me["role"] == "user"
    assert me["is_active"] is True


async def test_change_my_email_with_my_password(client: httpx.AsyncClient, api: Api) -> None:
    alice = await api.account("old@example.com")
    response = await patch_me(client, alice, email=" New@Example.com ", current_password=PASSWORD)
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "new@example.com"
    assert (await api.login("new@example.com")).status_code == 200
    assert_problem(await api.login("old@example.com"), 401, "unauthorized")


async def test_email_change_without_password_is_refused(
    client: httpx.AsyncClient, api: Api
) -> None:
    alice = await api.account("keep@example.com")
    body = assert_problem(
        await patch_me(client, alice, email="stolen@example.com"), 422, "wrong_password"
    )
    assert error_fields(body) == {"current_password"}
    assert (await client.get(ME, headers=alice.headers)).json()["email"] == "keep@example.com"


async def test_email_change_with_wrong_password_is_refused(
    client: httpx.AsyncClient, api: Api
) -> None:
    alice = await api.account("keep2@example.com")
    response = await patch_me(
        client, alice, email="stolen2@example.com", current_password="Wrong-password-1"
    )
    assert_problem(response, 422, "wrong_password")
    assert (await client.get(ME, headers=alice.headers)).json()["email"] == "keep2@example.com"


async def test_refused_email_change_keeps_the_name_too(client: httpx.AsyncClient, api: Api) -> None:
    alice = await api.account()
    response = await patch_me(client, alice, full_name="Changed", email="nope@example.com")
    assert_problem(response, 422, "wrong_password")
    assert (await client.get(ME, headers=alice.headers)).json()["full_name"] is None


@pytest.mark.parametrize("taken", ["taken@example.com", "TAKEN@Example.com"])
async def test_email_change_to_a_taken_email_conflicts(
    client: httpx.AsyncClient, api: Api, taken: str
) -> None:
    await api.register("taken@example.com")
    alice = await api.account("mine@example.com")
    response = await patch_me(client, alice, email=taken, current_password=PASSWORD)
    assert_problem(response, 409, "email_taken")
    assert (await client.get(ME, headers=alice.headers)).json()["email"] == "mine@example.com"


async def test_same_email_in_other_case_is_not_a_change(
    client: httpx.AsyncClient, api: Api
) -> None:
    alice = await api.account("case@example.com")
    response = await patch_me(client, alice, email="CASE@example.com")
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "case@example.com"


async def test_invalid_email_is_refused(client: httpx.AsyncClient, api: Api) -> None:
    alice = await api.account()
    response = await patch_me(client, alice, email="not-an-email", current_password=PASSWORD)
    body = assert_problem(response, 422, "validation_failed")
    assert error_fields(body) == {"email"}


async def test_profile_change_needs_a_token(client: httpx.AsyncClient) -> None:
    assert_problem(await client.patch(ME, json={"full_name": "x"}), 401, "unauthorized")


# --- password -------------------------------------------------------------------------------


async def test_change_password(client: httpx.AsyncClient, api: Api, app: FastAPI) -> None:
    alice = await api.account()
    old_hash = await stored_hash(app, alice.id)
    response = await change_password(client, alice, PASSWORD, NEW_PASSWORD)
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_problem(await api.login(alice.email, PASSWORD), 401, "unauthorized")
    assert (await api.login(alice.email, NEW_PASSWORD)).status_code == 200
    new_hash = await stored_hash(app, alice.id)
    assert new_hash != old_hash
    assert new_hash.startswith("$argon2id$")


async def test_password_change_signs_out_other_sessions(
    client: httpx.AsyncClient, api: Api
) -> None:
    alice = await api.account()
    other = (await api.login(alice.email)).json()
    rotated = (await refresh(client, other["refresh_token"])).json()
    assert (await change_password(client, alice, PASSWORD, NEW_PASSWORD)).status_code == 204
    assert_problem(await client.get(ME, headers=bearer(other["access_token"])), 401, "unauthorized")
    assert_problem(
        await client.get(ME, headers=bearer(rotated["access_token"])), 401, "unauthorized"
    )
    assert_problem(await refresh(client, rotated["refresh_token"]), 401, "unauthorized")


async def test_password_change_keeps_the_current_session(
    client: httpx.AsyncClient, api: Api
) -> None:
    alice = await api.account()
    await api.login(alice.email)
    assert (await change_password(client, alice, PASSWORD, NEW_PASSWORD)).status_code == 204
    assert (await client.get(ME, headers=alice.headers)).status_code == 200
    pair = await refresh(client, alice.refresh_token)
    assert pair.status_code == 200, pair.text
    assert (await client.get(ME, headers=bearer(pair.json()["access_token"]))).status_code == 200


async def test_password_change_leaves_other_users_alone(
    client: httpx.AsyncClient, api: Api
) -> None:
    alice = await api.account()
    bob = await api.account()
    assert (await change_password(client, alice, PASSWORD, NEW_PASSWORD)).status_code == 204
    assert (await client.get(ME, headers=bob.headers)).status_code == 200
    assert (await refresh(client, bob.refresh_token)).status_code == 200


async def test_password_change_with_wrong_current_password_is_refused(
    client: httpx.AsyncClient, api: Api
) -> None:
    alice = await api.account()
    other = (await api.login(alice.email)).json()
    response = await change_password(client, alice, "Wrong-password-1", NEW_PASSWORD)
    body = assert_problem(response, 422, "wrong_password")
    assert error_fields(body) == {"current_password"}
    assert (await api.login(alice.email, PASSWORD)).status_code == 200
    assert (await client.get(ME, headers=bearer(other["access_token"]))).status_code == 200


@pytest.mark.parametrize("new", ["short1A", "alllowercase", "12345678901", "A" * 129], ids=str)
async def test_weak_new_password_is_refused(client: httpx.AsyncClient, api: Api, new: str) -> None:
    alice = await api.account()
    body = assert_problem(
        await change_password(client, alice, PASSWORD, new), 422, "validation_failed"
    )
    assert error_fields(body) == {"new_password"}
    assert (await api.login(alice.email, PASSWORD)).status_code == 200


async def test_new_password_equal_to_the_current_one_is_refused(
    client: httpx.AsyncClient, api: Api
) -> None:
    alice = await api.account()
    other = (await api.login(alice.email)).json()
    response = await change_password(client, alice, PASSWORD, PASSWORD)
    body = assert_problem(response, 422, "weak_password")
    assert error_fields(body) == {"new_password"}
    # Refused means nothing happened: the other session was not signed out.
    assert (await client.get(ME, headers=bearer(other["access_token"]))).status_code == 200


async def test_new_password_equal_to_email_is_refused(client: httpx.AsyncClient, api: Api) -> None:
    alice = await api.account("pw-is-email@example.com")
    response = await change_password(client, alice, PASSWORD, "PW-is-Email@example.com")
    body = assert_problem(response, 422, "weak_password")
    assert error_fields(body) == {"new_password"}
    assert (await api.login(alice.email, PASSWORD)).status_code == 200


async def test_password_change_refuses_unknown_fields(client: httpx.AsyncClient, api: Api) -> None:
    alice = await api.account()
    response = await client.post(
        f"{ME}/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "email": "x@y.io"},
        headers=alice.headers,
    )
    assert_problem(response, 422, "validation_failed")


async def test_password_change_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{ME}/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert_problem(response, 401, "unauthorized")
