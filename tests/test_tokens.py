"""Access tokens: only a well-formed, unexpired HS256 token of ours, for a live session, passes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest

from primetrade.auth import tokens
from primetrade.auth.tokens import LEEWAY_SECONDS, InvalidToken, TokenCodec
from primetrade.kit import revocations
from primetrade.kit.revocations import MemoryRevocationStore
from tests.conftest import make_settings
from tests.helpers import API, Account, Api

SECRET = "test-secret-key-0123456789abcdef0123456789"
ME = f"{API}/users/me"
CLAIMS = ["sub", "sid", "jti", "typ", "iss", "aud", "iat", "exp"]


def assert_unauthorized(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer ")
    body: dict[str, Any] = response.json()
    assert body["status"] == 401
    assert body["code"] == "unauthorized"
    return body


def claims_of(who: Account) -> dict[str, Any]:
    """The claims of the account's real access token, unverified, ready to be re-signed."""
    claims: dict[str, Any] = jwt.decode(who.access_token, options={"verify_signature": False})
    return claims


def sign(claims: dict[str, Any], key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def call_me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(ME, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
async def alice(api: Api) -> Account:
    return await api.account()


async def test_a_token_signed_with_the_real_key_is_accepted(
    client: httpx.AsyncClient, alice: Account
) -> None:
    """The control for the forgeries below: re-signing untouched claims still works."""
    response = await call_me(client, sign(claims_of(alice)))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == alice.id


async def test_expired_token_is_refused(client: httpx.AsyncClient, alice: Account) -> None:
    now = int(time.time())
    claims = claims_of(alice) | {"iat": now - 1000, "nbf": now - 1000, "exp": now - 60}
    assert_unauthorized(await call_me(client, sign(claims)))


async def test_not_yet_valid_token_is_refused(client: httpx.AsyncClient, alice: Account) -> None:
    claims = claims_of(alice) | {"nbf": int(time.time()) + 600}
    assert_unauthorized(await call_me(client, sign(claims)))


async def test_token_issued_in_the_future_is_refused(
    client: httpx.AsyncClient, alice: Account
) -> None:
    claims = claims_of(alice) | {"iat": int(time.time()) + 600}
    assert_unauthorized(await call_me(client, sign(claims)))


async def test_tampered_signature_is_refused(client: httpx.AsyncClient, alice: Account) -> None:
    header, payload, signature = alice.access_token.split(".")
    # Change the first character: the last one may only carry padding bits.
    forged = ("B" if signature[0] != "B" else "C") + signature[1:]
    assert_unauthorized(await call_me(client, f"{header}.{payload}.{forged}"))


async def test_tampered_payload_is_refused(
    client: httpx.AsyncClient, api: Api, alice: Account
) -> None:
    bob = await api.account()
    header, _, signature = alice.access_token.split(".")
    payload = b64(claims_of(alice) | {"sub": bob.id, "sid": claims_of(bob)["sid"]})
    assert_unauthorized(await call_me(client, f"{header}.{payload}.{signature}"))


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_unsigned_token_is_refused(
    client: httpx.AsyncClient, alice: Account, alg: str
) -> None:
    token = f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims_of(alice))}."
    assert_unauthorized(await call_me(client, token))


async def test_other_hmac_algorithm_is_refused(client: httpx.AsyncClient, alice: Account) -> None:
    # Signed by hand: the library warns about the key length for HS512.
    signing_input = f"{b64({'alg': 'HS512', 'typ': 'JWT'})}.{b64(claims_of(alice))}"
    digest = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha512).digest()
    signature = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert_unauthorized(await call_me(client, f"{signing_input}.{signature}"))


async def test_token_signed_with_another_key_is_refused(
    client: httpx.AsyncClient, alice: Account
) -> None:
    other_key = "another-secret-key-0123456789abcdef012345"
    assert_unauthorized(await call_me(client, sign(claims_of(alice), key=other_key)))


async def test_wrong_issuer_is_refused(client: httpx.AsyncClient, alice: Account) -> None:
    claims = claims_of(alice) | {"iss": "someone-else"}
    assert_unauthorized(await call_me(client, sign(claims)))


@pytest.mark.parametrize("audience", ["another-api", ["another-api"], ""])
async def test_wrong_audience_is_refused(
    client: httpx.AsyncClient, alice: Account, audience: Any
) -> None:
    claims = claims_of(alice) | {"aud": audience}
    assert_unauthorized(await call_me(client, sign(claims)))


@pytest.mark.parametrize("claim", CLAIMS)
async def test_token_missing_a_claim_is_refused(
    client: httpx.AsyncClient, alice: Account, claim: str
) -> None:
    claims = claims_of(alice)
    del claims[claim]
    assert_unauthorized(await call_me(client, sign(claims)))


@pytest.mark.parametrize("kind", ["refresh", "id", ""])
async def test_token_of_another_type_is_refused(
    client: httpx.AsyncClient, alice: Account, kind: str
) -> None:
    claims = claims_of(alice) | {"typ": kind}
    assert_unauthorized(await call_me(client, sign(claims)))


@pytest.mark.parametrize(
    "changes",
    [{"sub": "not-a-uuid"}, {"sid": "not-a-uuid"}, {"sub": 42}, {"jti": 42}],
    ids=["sub-not-uuid", "sid-not-uuid", "sub-number", "jti-number"],
)
async def test_token_with_malformed_claims_is_refused(
    client: httpx.AsyncClient, alice: Account, changes: dict[str, Any]
) -> None:
    assert_unauthorized(await call_me(client, sign(claims_of(alice) | changes)))


async def test_token_for_a_session_that_does_not_exist_is_refused(
    client: httpx.AsyncClient, alice: Account
) -> None:
    claims = claims_of(alice) | {"sid": str(uuid.uuid4())}
    assert_unauthorized(await call_me(client, sign(claims)))


async def test_token_pairing_a_user_with_another_users_session_is_refused(
    client: httpx.AsyncClient, api: Api, alice: Account
) -> None:
    bob = await api.account()
    claims = claims_of(alice) | {"sid": claims_of(bob)["sid"]}
    assert_unauthorized(await call_me(client, sign(claims)))


async def test_token_for_an_unknown_user_is_refused(
    client: httpx.AsyncClient, alice: Account
) -> None:
    claims = claims_of(alice) | {"sub": str(uuid.uuid4())}
    assert_unauthorized(await call_me(client, sign(claims)))


async def test_refresh_token_is_not_an_access_token(
    client: httpx.AsyncClient, alice: Account
) -> None:
    assert_unauthorized(await call_me(client, alice.refresh_token))


@pytest.mark.parametrize(
    "token", ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..", "Bearer", "x" * 4000]
)
async def test_garbage_token_is_refused(
    client: httpx.AsyncClient, alice: Account, token: str
) -> None:
    assert_unauthorized(await call_me(client, token))


async def test_no_authorization_header_is_refused(client: httpx.AsyncClient) -> None:
    body = assert_unauthorized(await client.get(ME))
    assert "Bearer" in body["detail"]


@pytest.mark.parametrize("header", ["Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "bearer"])
async def test_authorization_without_a_bearer_token_is_refused(
    client: httpx.AsyncClient, header: str
) -> None:
    assert_unauthorized(await client.get(ME, headers={"Authorization": header}))


async def test_bearer_scheme_is_case_insensitive(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.get(ME, headers={"Authorization": f"bearer {alice.access_token}"})
    assert response.status_code == 200, response.text


async def test_refused_token_says_why_in_the_challenge(
    client: httpx.AsyncClient, alice: Account
) -> None:
    response = await call_me(client, sign(claims_of(alice), key="x" * 40))
    assert_unauthorized(response)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_revocation_store_forgets_entries_after_their_ttl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(revocations.time, "monotonic", lambda: clock[0])
    store = MemoryRevocationStore()
    await store.revoke("one", 10)
    assert await store.is_revoked("one")
    assert not await store.is_revoked("two")
    clock[0] += 9.9
    assert await store.is_revoked("one")
    clock[0] += 0.2
    assert not await store.is_revoked("one")


async def test_revocation_store_keeps_a_token_at_least_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [50.0]
    monkeypatch.setattr(revocations.time, "monotonic", lambda: clock[0])
    store = MemoryRevocationStore()
    await store.revoke("late", -5)
    clock[0] += 0.5
    assert await store.is_revoked("late")


def test_a_token_once_accepted_still_expires_on_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verified tokens are remembered, but the memory never outlives the token's `exp`."""
    codec = TokenCodec(make_settings("sqlite+aiosqlite:///:memory:"))
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    token = codec.issue_access(user_id, session_id)
    claims = codec.decode_access(token)
    assert (claims.user_id, claims.session_id) == (user_id, session_id)
    assert codec.decode_access(token) == claims  # the remembered verdict

    just_inside = claims.expires_at + timedelta(seconds=LEEWAY_SECONDS - 1)
    monkeypatch.setattr(tokens, "utcnow", lambda: just_inside)
    assert codec.decode_access(token) == claims
    monkeypatch.setattr(tokens, "utcnow", lambda: just_inside + timedelta(seconds=1))
    with pytest.raises(InvalidToken):
        codec.decode_access(token)
