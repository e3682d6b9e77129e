"""Access tokens (signed JWTs) and refresh tokens (opaque, stored hashed)."""

from __future__ import annotations

import functools
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from primetrade.kit.db import utcnow
from primetrade.settings import Settings

ALGORITHM = "HS256"
ACCESS_TYPE = "access"
# Clock skew tolerated on `exp`/`nbf`/`iat`: a token is accepted this long past its `exp`.
LEEWAY_SECONDS = 5
_LEEWAY = timedelta(seconds=LEEWAY_SECONDS)
VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    jti: str
    issued_at: datetime
    expires_at: datetime


class InvalidToken(Exception):
    """The token is malformed, forged, expired or of the wrong kind."""


class TokenCodec:
    def __init__(self, settings: Settings) -> None:
        self._key = settings.secret_key
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self.access_ttl = timedelta(seconds=settings.access_token_ttl_seconds)
        # Verifying a token is a pure function of the token and the key, and it runs on every
        # request (twice with rate limits on): remember recent verdicts. Only successes are
        # kept; expiry is checked again on every use below.
        self._verified = functools.lru_cache(maxsize=VERIFIED_CACHE_SIZE)(self._verify)

    def issue_access(self, user_id: uuid.UUID, session_id: uuid.UUID) -> str:
        now = utcnow()
        claims = {
            "sub": str(user_id),
            "sid": str(session_id),
            "jti": secrets.token_urlsafe(16),
            "typ": ACCESS_TYPE,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": now,
            "nbf": now,
            "exp": now + self.access_ttl,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def decode_access(self, token: str) -> AccessClaims:
        """Verify signature, algorithm, issuer, audience, expiry and type."""
        claims = self._verified(token)
        if claims.expires_at + _LEEWAY <= utcnow():
            raise InvalidToken("Signature has expired")
        return claims

    def _verify(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["sub", "sid", "jti", "exp", "iat", "iss", "aud", "typ"]},
                leeway=LEEWAY_SECONDS,
            )
            if claims["typ"] != ACCESS_TYPE:
                raise InvalidToken("not an access token")
            return AccessClaims(
                user_id=uuid.UUID(claims["sub"]),
                session_id=uuid.UUID(claims["sid"]),
                jti=str(claims["jti"]),
                issued_at=datetime.fromtimestamp(claims["iat"], tz=UTC),
                expires_at=datetime.fromtimestamp(claims["exp"], tz=UTC),
            )
        except (jwt.InvalidTokenError, ValueError, TypeError, KeyError) as exc:
            raise InvalidToken(str(exc)) from exc


def new_refresh_token() -> tuple[str, str]:
    """(token given to the client, hash kept in the database)."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    # A fast hash is right here: the token has 256 bits of entropy, nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()
