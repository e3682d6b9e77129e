"""The secret in a link, derived from the token's id: never stored, never in the outbox.

The link carries HMAC-SHA256(SECRET_KEY, id); the table keeps only the SHA-256 of that. The
mail job derives the secret again from the id when it renders the message, so neither the
database (tokens, outbox payloads) nor the job queue ever holds a usable token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

_CONTEXT = b"primetrade-account-token:"


def secret_for(token_id: uuid.UUID, key: str) -> str:
    digest = hmac.new(key.encode(), _CONTEXT + token_id.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
