"""The process-wide objects a request needs, built once at start-up and shared."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from primetrade.auth.passwords import PasswordHasher
from primetrade.auth.tokens import AccessClaims, InvalidToken, TokenCodec
from primetrade.kit.cache import Cache, Compute, MemoryCache, RedisCache, bind
from primetrade.kit.db import (
    create_engine,
    create_sessionmaker,
    read_only,
    session_scope,
    uses_pgbouncer,
    utcnow,
)
from primetrade.kit.middleware import bearer_token
from primetrade.kit.pagination import CursorCodec
from primetrade.kit.ratelimit import RateLimiter
from primetrade.kit.redisstore import RedisStore, client_options
from primetrade.kit.replicas import (
    MemoryRecentWriters,
    RecentWriters,
    RedisRecentWriters,
    ReplicaSet,
    read_from_primary,
    reads_from_replica,
)
from primetrade.kit.revocations import (
    MemoryRevocationStore,
    RedisRevocationStore,
    RevocationStore,
)
from primetrade.settings import Settings


@dataclass(slots=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]
    hasher: PasswordHasher
    tokens: TokenCodec
    revocations: RevocationStore
    limiter: RateLimiter
    cursors: CursorCodec
    replicas: ReplicaSet | None
    recent_writers: RecentWriters
    redis: RedisStore | None
    cache: Cache

    def __post_init__(self) -> None:
        # Every session made here invalidates this cache once it commits (see kit.cache).
        bind(self.sessions, self.cache, also=self._owner_changed)

    async def _owner_changed(self, owner: uuid.UUID) -> None:
        # Whoever made the change (the owner, or an admin), the owner's next reads and cache
        # refills go to the primary until replicas have surely replayed it.
        if self.replicas is not None:
            await self.recent_writers.mark(str(owner))

    async def forget(self, owner: uuid.UUID) -> None:
        """What a committed change of `owner`'s data does: fresh reads, then no cached entry."""
        await self._owner_changed(owner)
        await self.cache.invalidate(owner)

    async def cached(
        self,
        session: AsyncSession,
        name: str,
        owner: uuid.UUID,
        parts: tuple[str, ...],
        ttl: int,
        compute: Compute,
    ) -> bytes:
        """`cache.fetch`, with a refill that never stores a replica's stale rows.

        The request chose its replica when its session opened; a write of `owner` may have
        committed since, and the cache lookup then saw the new version. A change marks its
        owner as a recent writer before it bumps the version, so asking again here, after the
        lookup, is enough: such a refill reads from the primary.
        """

        async def fresh() -> bytes:
            if reads_from_replica(session) and await self.recent_writers.is_recent(str(owner)):
                read_from_primary(session)
            return await compute()

        return await self.cache.fetch(name, owner, parts, ttl, fresh)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        engine = create_engine(settings)
        reads = read_only(engine, pgbouncer=uses_pgbouncer(settings, settings.database_url))
        redis = build_redis(settings)
        return cls(
            redis=redis,
            cache=build_cache(settings, redis),
            settings=settings,
            engine=engine,
            sessions=create_sessionmaker(engine),
            read_sessions=create_sessionmaker(reads),
            replicas=ReplicaSet(settings, reads) if settings.read_database_urls else None,
            recent_writers=build_recent_writers(settings, redis),
            hasher=PasswordHasher(
                settings.password_hash_concurrency,
                time_cost=settings.password_hash_time_cost,
                memory_kib=settings.password_hash_memory_kib,
            ),
            tokens=TokenCodec(settings),
            revocations=RedisRevocationStore(redis) if redis else MemoryRevocationStore(),
            limiter=build_limiter(settings, redis),
            cursors=CursorCodec(settings.secret_key),
        )

    async def start(self) -> None:
        """Start the background work: probing the read replicas."""
        if self.replicas is not None:
            self.replicas.start()

    async def close(self) -> None:
        self.hasher.close()
        if self.replicas is not None:
            await self.replicas.close()
        if self.redis is not None:
            await self.redis.close()
        await self.engine.dispose()

    async def reader(self, request: Request) -> async_sessionmaker[AsyncSession]:
        """Where a safe request reads: a replica, unless its caller has just written."""
        if self.replicas is None or await self._wrote_recently(request):
            return self.read_sessions
        return self.replicas.sessions() or self.read_sessions

    async def _wrote_recently(self, request: Request) -> bool:
        claims = self._bearer_claims(request)
        if claims is None:
            return False
        # A token minted within the window comes from a sign-in or a refresh, which has just
        # written the session row that every request with the token is checked against.
        window = timedelta(seconds=self.settings.read_your_writes_seconds)
        if claims.issued_at > utcnow() - window:
            return True
        return await self.recent_writers.is_recent(str(claims.user_id))

    def _bearer_claims(self, request: Request) -> AccessClaims | None:
        # The session opens before authentication, so the caller is taken from the token here.
        # A verified signature (the codec remembers its verdicts) is enough to route by:
        # routing only decides how fresh the data read is, and get_principal still checks the
        # token, its revocation and its session in full.
        token = bearer_token(request.scope)
        if token is None:
            return None
        try:
            return self.tokens.decode_access(token)
        except InvalidToken:
            return None


def build_recent_writers(settings: Settings, redis: RedisStore | None) -> RecentWriters:
    window = settings.read_your_writes_seconds
    return RedisRecentWriters(redis, window) if redis else MemoryRecentWriters(window)


def build_redis(settings: Settings) -> RedisStore | None:
    if settings.redis_url is None:
        return None
    return RedisStore(
        settings.redis_url,
        prefix=settings.redis_prefix,
        timeout=settings.redis_timeout_seconds,
        breaker_seconds=settings.redis_breaker_seconds,
    )


def build_limiter(settings: Settings, redis: RedisStore | None = None) -> RateLimiter:
    policies = {
        "anonymous": settings.rate_limit_anonymous,
        "user": settings.rate_limit_user,
        "auth": settings.rate_limit_auth,
        "login_failures": settings.rate_limit_login_failures,
    }
    url, options = limiter_storage(settings, redis)
    return RateLimiter(
        url,
        policies,
        enabled=settings.rate_limit_enabled,
        options=options,
        breaker_seconds=settings.redis_breaker_seconds,
    )


def limiter_storage(settings: Settings, redis: RedisStore | None) -> tuple[str, dict[str, Any]]:
    """The `limits` storage URL and options: Redis through redis-py, failing fast.

    With REDIS_URL set and RATE_LIMIT_STORAGE_URL left at its default, the counters live in
    that Redis, on the runtime's pool (closed with it) and under its key prefix.
    """
    url = settings.rate_limit_storage_url
    common: dict[str, Any] = {"implementation": "redispy", "wrap_exceptions": True}
    default = Settings.model_fields["rate_limit_storage_url"].default
    if redis is not None and settings.redis_url is not None and url == default:
        options = {"connection_pool": redis.pool, "key_prefix": redis.key("limits")}
        return settings.redis_url, {**common, **options}
    if "redis" in url.split("://", 1)[0]:
        return url, {**common, **client_options(settings.redis_timeout_seconds)}
    return url, {}


def build_cache(settings: Settings, redis: RedisStore | None) -> Cache:
    if redis is not None:
        return RedisCache(redis, enabled=settings.cache_enabled)
    # An in-process cache cannot hear about writes made by sibling workers, and a demoted or
    # deactivated account must lose access at once on every one of them: several workers
    # (`serve --workers N` sets the metrics folder for them) cache only through Redis.
    several_workers = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    return MemoryCache(
        enabled=settings.cache_enabled and not several_workers,
        max_entries=settings.cache_memory_max_entries,
    )


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_session(request: Request, runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """The request's one transaction, committed before the response is sent."""
    if request.method in SAFE_METHODS:
        async with session_scope(await runtime.reader(request)) as session:
            yield session
        return
    async with session_scope(runtime.sessions) as session:
        yield session
    # Marked before the response leaves, so the writer's next read already goes to the primary.
    user_id = request.scope.get("user_id")
    if runtime.replicas is not None and user_id is not None:
        await runtime.recent_writers.mark(user_id)


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
