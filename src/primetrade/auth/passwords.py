"""Argon2id password hashing, run off the event loop and bounded in concurrency."""

from __future__ import annotations

from anyio import CapacityLimiter, to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher


class PasswordHasher:
    """Hash and verify passwords in worker threads, at most `concurrency` at a time.

    A stored hash made with other parameters still verifies, and is replaced by one with the
    current parameters at the next sign-in (`verify` returns it), so raising the cost later
    upgrades every account that signs in.
    """

    def __init__(
        self,
        concurrency: int,
        *,
        time_cost: int,
        memory_kib: int,
    ) -> None:
        self._limiter = CapacityLimiter(concurrency)
        self.hasher = PasswordHash(
            (Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1),)
        )
        # Verifying against this when the account does not exist makes an unknown email cost
        # the same as a wrong password: no timing oracle for which emails are registered.
        self._dummy_hash = self.hasher.hash("primetrade-dummy-password-for-timing")

    async def hash(self, password: str) -> str:
        return await to_thread.run_sync(self.hasher.hash, password, limiter=self._limiter)

    async def verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        """(matches, new hash when the stored one uses other parameters)."""
        target = hashed or self._dummy_hash
        ok, updated = await to_thread.run_sync(
            self.hasher.verify_and_update, password, target, limiter=self._limiter
        )
        # An empty stored hash must never match (it would be checked against the dummy).
        return (ok and bool(hashed)), updated
