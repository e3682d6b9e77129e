"""Cache-aside for per-user reads, correct across instances.

Every key carries the owner's id (always the signed-in caller's, never a client's input) and
that owner's version counter. A write that affects a user bumps the counter once it has
committed, so every entry of that user becomes unreachable at once, on every instance; old
entries simply expire. Without Redis the same code runs on an in-process store.

A value is a finished byte string stored by one command after it is fully built, so a request
that fails or is cancelled half-way stores nothing. One request per key recomputes at a time
(stampede protection); the others wait briefly for its result.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, ClassVar

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from primetrade.kit.db import after_commit
from primetrade.kit.metrics import CACHE_REQUESTS
from primetrade.kit.redisstore import RedisStore, StoreUnavailable, bump_counter, initial_counter

Compute = Callable[[], Awaitable[bytes]]
_SESSION_INFO = "cache"
# A recompute holds its key's lock at most this long (a crashed holder blocks no longer) ...
LOCK_SECONDS = 5.0
# ... and others wait this long for its value before computing it themselves.
WAIT_SECONDS = 1.0
POLL_SECONDS = 0.02


def entry_id(name: str, parts: Sequence[str]) -> str:
    """How `fetch(name, owner, parts, ...)` names its entry within the owner's keys."""
    return f"{name}:{':'.join(parts)}"


@dataclass(frozen=True, slots=True)
class Entry:
    """A cached response body with its entity tag, stored as one value."""

    etag: str
    body: bytes

    def pack(self) -> bytes:
        return self.etag.encode() + b"\n" + self.body

    @classmethod
    def unpack(cls, data: bytes) -> Entry:
        etag, _, body = data.partition(b"\n")
        return cls(etag.decode(), body)


class Cache(ABC):
    """Per-owner cache-aside with version invalidation; see the module text."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled

    async def fetch(
        self, name: str, owner: uuid.UUID, parts: Sequence[str], ttl: int, compute: Compute
    ) -> bytes:
        """The cached value of `name` for `owner` and `parts`, or `compute()` stored for `ttl`."""
        if not self.enabled:
            return await compute()
        try:
            key, value = await self._lookup(owner, entry_id(name, parts))
        except StoreUnavailable:
            CACHE_REQUESTS.labels(name, "error").inc()
            return await compute()
        if value is not None:
            CACHE_REQUESTS.labels(name, "hit").inc()
            return value
        return await self._fill(name, key, ttl, compute)

    async def peek(
        self, owner: uuid.UUID, entries: Sequence[str], *, also: Sequence[str] = ()
    ) -> tuple[list[bytes | None], list[bytes | None]]:
        """The current values of several entries (`entry_id`s) of `owner`, computing nothing.

        For a path that answers from the cache alone and hands every miss to the full one.
        `also` are raw keys of the shared store read in the same round trip (the in-process
        cache has none). Counts nothing: the caller knows which misses matter. Raises
        StoreUnavailable when the store fails.
        """
        if also:
            raise ValueError("the in-process cache has no raw keys")
        if not self.enabled:
            return [None] * len(entries), []
        scope = await self._scope(owner)
        return [await self._get(f"c:{scope}:{entry}") for entry in entries], []

    async def _lookup(self, owner: uuid.UUID, entry: str) -> tuple[str, bytes | None]:
        """The key `entry` of `owner` lives under now, and its value if there is one."""
        key = f"c:{await self._scope(owner)}:{entry}"
        return key, await self._get(key)

    async def _fill(self, name: str, key: str, ttl: int, compute: Compute) -> bytes:
        async with self._turn(key):
            with suppress(StoreUnavailable):
                value = await self._get(key)
                if value is not None:  # filled by the request we waited for
                    CACHE_REQUESTS.labels(name, "hit").inc()
                    return value
            value = await compute()
            try:
                await self._set(key, value, ttl)
            except StoreUnavailable:
                CACHE_REQUESTS.labels(name, "error").inc()
            else:
                CACHE_REQUESTS.labels(name, "miss").inc()
            return value

    async def invalidate(self, owner: uuid.UUID) -> None:
        """Make every entry of `owner` stale, here and on every other instance."""
        if self.enabled:
            await self._bump(owner)

    @abstractmethod
    async def _scope(self, owner: uuid.UUID) -> str:
        """The part of every key of `owner` that changes when `owner`'s data changes."""

    @abstractmethod
    async def _get(self, key: str) -> bytes | None: ...

    @abstractmethod
    async def _set(self, key: str, value: bytes, ttl: int) -> None: ...

    @abstractmethod
    async def _bump(self, owner: uuid.UUID) -> None: ...

    @abstractmethod
    def _turn(self, key: str) -> AbstractAsyncContextManager[None]:
        """Held while `key` is recomputed, so one request at a time does it."""


class MemoryCache(Cache):
    """One process: a bounded LRU dictionary, and an asyncio lock per key being computed."""

    # Versions belong to the process, not to one cache: a write through another runtime of
    # the same process (a command such as `create-admin`, a second app) still invalidates.
    _versions: ClassVar[dict[uuid.UUID, int]] = {}

    def __init__(self, *, enabled: bool, max_entries: int) -> None:
        super().__init__(enabled=enabled)
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def _scope(self, owner: uuid.UUID) -> str:
        return f"{owner}:{self._versions.get(owner, 0)}"

    async def _get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return found[1]

    async def _set(self, key: str, value: bytes, ttl: int) -> None:
        self._entries[key] = (time.monotonic() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def _bump(self, owner: uuid.UUID) -> None:
        self._versions[owner] = self._versions.get(owner, 0) + 1

    @asynccontextmanager
    async def _turn(self, key: str) -> AsyncIterator[None]:
        lock, holders = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, holders + 1)
        try:
            async with lock:
                yield
        finally:
            lock, holders = self._locks[key]
            if holders == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, holders - 1)


class RedisCache(Cache):
    """Shared by every instance: values with a TTL, versions as counters, SET NX locks."""

    def __init__(self, store: RedisStore, *, enabled: bool) -> None:
        super().__init__(enabled=enabled)
        self.store = store

    async def _lookup(self, owner: uuid.UUID, entry: str) -> tuple[str, bytes | None]:
        # One round trip on a hit: the counters and the newest value stored for this entry
        # come back together, and the value counts only if it was stored under the counters
        # read now. (Reading the counters first and then a key built from them costs two.)
        scope, (value,), _ = await self._read_current(owner, (entry,), ())
        if scope is None:
            return f"c:{await self._scope(owner)}:{entry}", None
        return f"c:{scope}:{entry}", value

    async def peek(
        self, owner: uuid.UUID, entries: Sequence[str], *, also: Sequence[str] = ()
    ) -> tuple[list[bytes | None], list[bytes | None]]:
        if not self.enabled:
            return [None] * len(entries), [None] * len(also)
        _, values, extra = await self._read_current(owner, entries, also)
        return values, extra

    async def _read_current(
        self, owner: uuid.UUID, entries: Sequence[str], also: Sequence[str]
    ) -> tuple[str | None, list[bytes | None], list[bytes | None]]:
        """One MGET: the counters, the slot of each entry and the raw keys `also`.

        Gives the scope the counters make now (None when they are not set yet), each entry's
        value if it was stored under that scope, and the raw values of `also`.
        """
        epoch_key, version_key = self.store.key("epoch"), self.store.key("u", owner, "v")
        slots = [self.store.key(f"c:{owner}:{entry}") for entry in entries]  # as `_slot` says
        keys = [epoch_key, version_key, *slots, *also]

        async def read(client: Redis) -> list[Any]:
            return list(await client.mget(keys))

        epoch, version, *values = await self.store.run(read)
        found, extra = values[: len(entries)], [_raw(v) for v in values[len(entries) :]]
        if epoch is None or version is None:
            return None, [None] * len(entries), extra
        scope = f"{int(epoch)}:{owner}:{int(version)}"
        current = [
            _stored_under(f"c:{scope}:{entry}", _raw(value))
            for entry, value in zip(entries, found, strict=True)
        ]
        return scope, current, extra

    async def _scope(self, owner: uuid.UUID) -> str:
        epoch_key, version_key = self.store.key("epoch"), self.store.key("u", owner, "v")

        async def read(client: Redis) -> str:
            async with client.pipeline(transaction=False) as pipe:
                pipe.set(epoch_key, initial_counter(), nx=True)
                pipe.set(version_key, initial_counter(), nx=True)
                pipe.mget(epoch_key, version_key)
                epoch, version = (await pipe.execute())[-1]
            return f"{int(epoch)}:{owner}:{int(version)}"

        return await self.store.run(read)

    def _slot(self, key: str) -> str:
        """Where the value of a versioned key is stored: one slot per owner and entry.

        `c:<epoch>:<owner>:<version>:<entry>` is stored at `c:<owner>:<entry>`, prefixed with
        the full key it was computed under, so a lookup needs no separate counter read and
        a newer version simply overwrites the older value instead of leaving it to expire.
        """
        _, _epoch, owner, _version, entry = key.split(":", 4)
        return self.store.key(f"c:{owner}:{entry}")

    async def _get(self, key: str) -> bytes | None:
        return _stored_under(key, _raw(await self.store.run(lambda c: c.get(self._slot(key)))))

    async def _set(self, key: str, value: bytes, ttl: int) -> None:
        packed = key.encode() + b"\n" + value
        await self.store.run(lambda client: client.set(self._slot(key), packed, ex=ttl))

    async def _bump(self, owner: uuid.UUID) -> None:
        try:
            key = self.store.key("u", owner, "v")
            await self.store.run(lambda client: bump_counter(client, key))
        except StoreUnavailable:
            self.store.lost_write()

    @asynccontextmanager
    async def _turn(self, key: str) -> AsyncIterator[None]:
        lock = self.store.client.lock(
            self.store.key("lock", key),
            timeout=LOCK_SECONDS,
            blocking=False,
            raise_on_release_error=False,
        )
        try:
            mine = await self.store.run(lambda _client: lock.acquire())
        except StoreUnavailable:
            mine = None
        if not mine:
            if mine is False:
                await self._wait_for(key)
            yield
            return
        try:
            yield
        finally:
            with suppress(StoreUnavailable):
                await self.store.run(lambda _client: lock.release())

    async def _wait_for(self, key: str) -> None:
        """Until another request stored `key`, for at most WAIT_SECONDS."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        while loop.time() < deadline:
            await asyncio.sleep(POLL_SECONDS)
            try:
                if await self._get(key) is not None:
                    return
            except StoreUnavailable:
                return


def _stored_under(key: str, slot_value: bytes | None) -> bytes | None:
    """The value a slot holds if it was stored under `key` (an older version's is no value)."""
    if slot_value is None:
        return None
    stored_under, _, body = slot_value.partition(b"\n")
    return body if stored_under.decode() == key else None


def _raw(value: Any) -> bytes | None:
    # The pool does not decode responses; redis-py's annotations still allow str.
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode()


OwnerChanged = Callable[[uuid.UUID], Awaitable[None]]


def bind(
    sessions: async_sessionmaker[AsyncSession],
    cache: Cache,
    *,
    also: OwnerChanged | None = None,
) -> None:
    """Let every session made by `sessions` invalidate `cache` after it commits.

    `also` runs for the same owner at the same moment: the runtime uses it to send that
    owner's next reads to the primary, so the refill of the entries just invalidated cannot
    come from a replica that has not replayed the write yet.
    """
    sessions.configure(info={_SESSION_INFO: (cache, also)})


def invalidate_after_commit(session: AsyncSession, owner: uuid.UUID) -> None:
    """Once this transaction commits, everything cached for `owner` is stale everywhere.

    Registered on the session (see `bind`), so services mark what they change without being
    handed the cache; a session not made by the runtime caches nothing and needs nothing.
    """
    bound: tuple[Cache, OwnerChanged | None] | None = session.info.get(_SESSION_INFO)
    if bound is None:
        return
    cache, also = bound
    if also is not None:
        after_commit(session, functools.partial(also, owner))
    after_commit(session, functools.partial(cache.invalidate, owner))
