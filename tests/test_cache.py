"""The cache itself, on both stores: hits, owner scoping, invalidation, stampedes, outages."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from prometheus_client import REGISTRY

from primetrade.kit.cache import Cache, MemoryCache, RedisCache
from primetrade.kit.redisstore import Breaker, RedisStore
from tests.pgserver import free_port
from tests.redisserver import PrivateRedis, private_prefix, shared_redis_url

TTL = 60


@pytest.fixture(scope="session")
def redis_url() -> str:
    return shared_redis_url()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    yield from private_prefix()


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "memory":
        yield MemoryCache(enabled=True, max_entries=1000)
        return
    url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
    store = RedisStore(url, prefix=prefix, timeout=2.0, breaker_seconds=5.0)
    try:
        yield RedisCache(store, enabled=True)
    finally:
        await store.close()


def counted(name: str, result: str) -> float:
    value = REGISTRY.get_sample_value("cache_requests_total", {"cache": name, "result": result})
    return value or 0.0


def outages() -> float:
    return REGISTRY.get_sample_value("redis_outages_total", {"component": "store"}) or 0.0


class Source:
    """A compute function that counts its calls and returns `value`."""

    def __init__(self, value: bytes = b"v1") -> None:
        self.value, self.calls = value, 0

    async def __call__(self) -> bytes:
        self.calls += 1
        return self.value


def fresh_name() -> str:
    return f"test_{uuid.uuid4().hex[:8]}"


async def test_a_miss_computes_and_stores_then_hits(cache: Cache) -> None:
    name, owner, source = fresh_name(), uuid.uuid4(), Source()
    assert await cache.fetch(name, owner, ["a"], TTL, source) == b"v1"
    assert await cache.fetch(name, owner, ["a"], TTL, source) == b"v1"
    assert source.calls == 1
    assert (counted(name, "miss"), counted(name, "hit")) == (1, 1)


async def test_owners_never_share_an_entry(cache: Cache) -> None:
    name = fresh_name()
    alice, bob = uuid.uuid4(), uuid.uuid4()
    assert await cache.fetch(name, alice, ["same"], TTL, Source(b"alice's")) == b"alice's"
    assert await cache.fetch(name, bob, ["same"], TTL, Source(b"bob's")) == b"bob's"
    assert await cache.fetch(name, alice, ["same"], TTL, Source(b"never")) == b"alice's"


async def test_invalidating_an_owner_makes_every_entry_of_theirs_stale(cache: Cache) -> None:
    name, alice, bob = fresh_name(), uuid.uuid4(), uuid.uuid4()
    await cache.fetch(name, alice, ["a"], TTL, Source(b"old"))
    await cache.fetch(name, alice, ["b"], TTL, Source(b"old"))
    await cache.fetch(name, bob, ["a"], TTL, Source(b"bob"))
    await cache.invalidate(alice)
    assert await cache.fetch(name, alice, ["a"], TTL, Source(b"new")) == b"new"
    assert await cache.fetch(name, alice, ["b"], TTL, Source(b"new")) == b"new"
    assert await cache.fetch(name, bob, ["a"], TTL, Source(b"never")) == b"bob"


async def test_concurrent_misses_compute_once(cache: Cache) -> None:
    name, owner = fresh_name(), uuid.uuid4()
    entered, release = asyncio.Event(), asyncio.Event()
    calls = 0

    async def slow() -> bytes:
        nonlocal calls
        calls += 1
        entered.set()
        await release.wait()
        return b"once"

    fetches = [asyncio.create_task(cache.fetch(name, owner, ["k"], TTL, slow)) for _ in range(20)]
    await entered.wait()
    for _ in range(10):  # let every other request reach the lock (or start polling for it)
        await asyncio.sleep(0.005)
    release.set()
    assert await asyncio.gather(*fetches) == [b"once"] * 20
    assert calls == 1


async def test_a_failed_or_cancelled_compute_stores_nothing(cache: Cache) -> None:
    name, owner = fresh_name(), uuid.uuid4()

    async def broken() -> bytes:
        raise RuntimeError("half-way")

    with pytest.raises(RuntimeError):
        await cache.fetch(name, owner, ["k"], TTL, broken)
    started = asyncio.Event()

    async def endless() -> bytes:
        started.set()
        await asyncio.Event().wait()
        return b"never"

    hanging = asyncio.create_task(cache.fetch(name, owner, ["k"], TTL, endless))
    await started.wait()
    hanging.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hanging
    source = Source(b"whole")
    assert await cache.fetch(name, owner, ["k"], TTL, source) == b"whole"
    assert source.calls == 1


async def test_a_disabled_cache_always_computes() -> None:
    cache, source = MemoryCache(enabled=False, max_entries=10), Source()
    owner = uuid.uuid4()
    for _ in range(3):
        await cache.fetch("disabled", owner, ["k"], TTL, source)
    assert source.calls == 3


async def test_the_memory_cache_keeps_a_bounded_number_of_entries() -> None:
    cache, owner, name = MemoryCache(enabled=True, max_entries=2), uuid.uuid4(), fresh_name()
    for part in ("a", "b", "c"):
        await cache.fetch(name, owner, [part], TTL, Source())
    source = Source()
    await cache.fetch(name, owner, ["a"], TTL, source)  # the least recently used went first
    await cache.fetch(name, owner, ["c"], TTL, source)
    assert source.calls == 1


async def test_with_redis_unreachable_every_read_computes_and_one_outage_is_counted() -> None:
    store = RedisStore(
        f"redis://127.0.0.1:{free_port()}/0", prefix="x:", timeout=0.5, breaker_seconds=60
    )
    cache, name, source = RedisCache(store, enabled=True), fresh_name(), Source()
    before = outages()
    try:
        for _ in range(5):
            assert await cache.fetch(name, uuid.uuid4(), ["k"], TTL, source) == b"v1"
        await cache.invalidate(uuid.uuid4())  # lost, and remembered, never raised
    finally:
        await store.close()
    assert source.calls == 5
    assert counted(name, "error") == 5
    assert outages() - before == 1
    assert store.breaker.down


def test_the_breaker_skips_until_its_pause_is_over_then_lets_one_probe_through() -> None:
    breaker = Breaker("test", seconds=0)
    breaker.failed(OSError("refused"))
    assert breaker.down
    assert breaker.allow()  # pause over: one probe
    breaker.succeeded()
    assert not breaker.down
    paused = Breaker("test", seconds=3600)
    paused.failed(OSError("refused"))
    assert not paused.allow()
    assert paused.allow(probe=True)


async def test_an_invalidation_lost_in_an_outage_is_not_served_after_recovery(
    private_redis: PrivateRedis,
) -> None:
    """Redis stalls (data kept) while a write's invalidation is attempted: after it returns,
    the entry cached before the write must not be served."""
    store = RedisStore(private_redis.url, prefix="p:", timeout=0.2, breaker_seconds=0)
    cache, name, owner = RedisCache(store, enabled=True), fresh_name(), uuid.uuid4()
    admin = redis.Redis.from_url(private_redis.url)
    try:
        assert await cache.fetch(name, owner, ["k"], TTL, Source(b"before")) == b"before"
        admin.execute_command("CLIENT", "PAUSE", "1500", "ALL")
        await cache.invalidate(owner)
        assert store.breaker.down
        for _ in range(100):  # until the pause is over
            if await store.ping():
                break
            await asyncio.sleep(0.1)
        assert await cache.fetch(name, owner, ["k"], TTL, Source(b"after")) == b"after"
    finally:
        admin.close()
        await store.close()
