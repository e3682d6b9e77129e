"""A denylist of revoked access-token ids, kept until each token would have expired anyway.

In-process by default; with Redis, a logout on one instance is refused by every instance at
once. The denylist is defence in depth: a logout also revokes the session row in the database,
which every request checks unless its principal comes from the cache, and the cache entry is
invalidated by the same logout.
"""

from __future__ import annotations

import time
from typing import Protocol

from primetrade.kit.redisstore import RedisStore, StoreUnavailable


class RevocationsUnavailable(Exception):
    """The denylist cannot be read right now."""


class RevocationStore(Protocol):
    async def revoke(self, token_id: str, ttl_seconds: int) -> None: ...

    async def is_revoked(self, token_id: str) -> bool:
        """Whether the token was revoked; RevocationsUnavailable when that is unknown."""
        ...

    def shared_key(self, token_id: str) -> str | None:
        """The token's denial in the shared store, for reading it with other keys at once.

        Present (any value) means revoked. None for the in-process store: ask `is_revoked`.
        """
        ...


class MemoryRevocationStore:
    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    async def revoke(self, token_id: str, ttl_seconds: int) -> None:
        now = time.monotonic()
        self._until = {k: v for k, v in self._until.items() if v > now}
        self._until[token_id] = now + max(ttl_seconds, 1)

    async def is_revoked(self, token_id: str) -> bool:
        until = self._until.get(token_id)
        return until is not None and until > time.monotonic()

    def shared_key(self, token_id: str) -> str | None:
        return None


class RedisRevocationStore:
    """One key per revoked token, expiring with the token."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store

    def shared_key(self, token_id: str) -> str:
        return self.store.key("revoked", token_id)

    async def revoke(self, token_id: str, ttl_seconds: int) -> None:
        # A write lost to an outage is covered by the session row revoked in the same request
        # (and by the cache invalidation that follows it), so it does not fail the logout.
        key = self.shared_key(token_id)
        try:
            await self.store.run(lambda client: client.set(key, b"1", ex=max(ttl_seconds, 1)))
        except StoreUnavailable:
            self.store.lost_write()

    async def is_revoked(self, token_id: str) -> bool:
        key = self.shared_key(token_id)
        try:
            return bool(await self.store.run(lambda client: client.exists(key)))
        except StoreUnavailable as exc:
            raise RevocationsUnavailable from exc
