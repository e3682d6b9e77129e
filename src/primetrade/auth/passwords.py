"""Argon2id password hashing, run off the event loop and bounded in concurrency."""

from __future__ import annotations

from anyio import CapacityLimiter, to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

# OWASP's second Argon2id profile (19 MiB, 2 passes): strong, yet ~20 ms on a laptop core.
_hasher = PasswordHash((Argon2Hasher(time_cost=2, memory_cost=19456, parallelism=1),))
# Verifying against this when the account does not exist makes an unknown email cost the
# same as a wrong password: no timing oracle for which emails are registered.
_DUMMY_HASH = _hasher.hash("primetrade-dummy-password-for-timing")


class PasswordHasher:
    """Hash and verify passwords in worker threads, at most `concurrency` at a time."""

    def __init__(self, concurrency: int) -> None:
        self._limiter = CapacityLimiter(concurrency)

    async def hash(self, password: str) -> str:
        return await to_thread.run_sync(_hasher.hash, password, limiter=self._limiter)

    async def verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        """(matches, new hash when the stored one uses weaker parameters)."""
        target = hashed or _DUMMY_HASH
        ok, updated = await to_thread.run_sync(
            _hasher.verify_and_update, password, target, limiter=self._limiter
        )
        # An empty stored hash must never match (it would be checked against the dummy).
        return (ok and bool(hashed)), updated
