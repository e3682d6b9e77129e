"""Rate limits on the `limits` library: one storage URL, several named policies.

The storage is in-process by default and Redis when its URL says so, which makes every limit
global across instances without changing the code that asks.

The strategy is the library's sliding-window counter: two counters per key (this window and
the last), the last one weighted by how much of it still overlaps the sliding window. That
costs two keys where an exact moving window keeps a timestamp per hit, and it does not let a
client spend twice its budget across a boundary the way a fixed window does. The weighted
count is rounded down, so just after a boundary one call more than the limit can get through;
within one window the count is exact.

When the storage fails, the general limits fail open (an outage of the counters must not take
the API down with it) while the sign-in limits fail closed with 503 `rate_limit_unavailable`:
they are what stands between a password guesser and the accounts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from primetrade.kit.errors import ServiceUnavailable
from primetrade.kit.metrics import RATE_LIMITED
from primetrade.kit.middleware import send_problem
from primetrade.kit.redisstore import FAILURES, Breaker

T = TypeVar("T")
# Policies that refuse (503) rather than allow when their counters cannot be read.
FAIL_CLOSED = frozenset({"auth", "login_failures"})


class RateLimitUnavailable(ServiceUnavailable):
    code, title = "rate_limit_unavailable", "Rate limit unavailable"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int
    # False when the storage failed and a fail-open policy let the request through uncounted.
    metered: bool = True

    def headers(self) -> list[tuple[bytes, bytes]]:
        if not self.metered:
            return []
        headers = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_after).encode()),
        ]
        if not self.allowed:
            headers.append((b"retry-after", str(max(self.reset_after, 1)).encode()))
        return headers


class RateLimiter:
    """Named policies (`"user"`, `"auth"`, …) checked against one shared storage."""

    def __init__(
        self,
        storage_url: str,
        policies: dict[str, str],
        *,
        enabled: bool = True,
        options: dict[str, Any] | None = None,
        breaker_seconds: float = 5.0,
    ):
        """`options` go to the `limits` storage (for Redis: client options, key prefix)."""
        url = storage_url if storage_url.startswith("async+") else f"async+{storage_url}"
        storage = storage_from_string(url, **(options or {}))
        assert isinstance(storage, Storage)
        self.storage = storage
        self.strategy = SlidingWindowCounterRateLimiter(storage)
        self.policies: dict[str, RateLimitItem] = {name: parse(v) for name, v in policies.items()}
        self.enabled = enabled
        self.breaker = Breaker("rate_limit", breaker_seconds)

    async def hit(self, policy: str, key: str) -> Decision:
        """Count one event for `key` and say whether it was within the policy."""
        return await self._apply(policy, key, self.strategy.hit)

    async def check(self, policy: str, key: str) -> Decision:
        """Say whether one more event would be allowed, without counting it."""
        return await self._apply(policy, key, self.strategy.test)

    async def reset(self, policy: str, key: str) -> None:
        await self._guarded(policy, lambda: self.strategy.clear(self.policies[policy], policy, key))

    async def _apply(
        self, policy: str, key: str, strategy: Callable[..., Awaitable[bool]]
    ) -> Decision:
        item = self.policies[policy]
        if not self.enabled:
            return Decision(True, item.amount, item.amount, 0)
        allowed = await self._guarded(policy, lambda: strategy(item, policy, key))
        if allowed is None:
            return Decision(True, item.amount, item.amount, 0, metered=False)
        if not allowed:
            RATE_LIMITED.labels(policy).inc()
        decision = await self._guarded(policy, lambda: self._decision(allowed, item, policy, key))
        # Counted, but the storage failed right after: answer without the budget headers
        # (a refusal keeps them, so it still says when to retry).
        return decision or Decision(allowed, item.amount, 0, 1, metered=not allowed)

    async def _guarded(self, policy: str, call: Callable[[], Awaitable[T]]) -> T | None:
        """`call()`'s result; None when the storage failed and `policy` fails open."""
        if not self.breaker.allow():
            self._unavailable(policy)
            return None
        try:
            result = await call()
        except (StorageError, *FAILURES) as exc:
            self.breaker.failed(exc)
            self._unavailable(policy)
            return None
        self.breaker.succeeded()
        return result

    def _unavailable(self, policy: str) -> None:
        """Raise for a policy that fails closed; a fail-open one lets the request through."""
        if policy in FAIL_CLOSED:
            raise RateLimitUnavailable(
                "Sign-in limits cannot be checked right now; try again shortly.",
                retry_after=max(1, math.ceil(self.breaker.seconds)),
            )

    async def _decision(
        self, allowed: bool, item: RateLimitItem, policy: str, key: str
    ) -> Decision:
        stats = await self.strategy.get_window_stats(item, policy, key)
        reset_after = max(0, math.ceil(stats.reset_time - time.time()))
        return Decision(allowed, item.amount, stats.remaining, reset_after)


Identify = Callable[[Scope], str | None]


class RateLimitMiddleware:
    """Apply the general limit to every API call, and the auth limit to sign-in endpoints.

    The key is the signed-in user when `identify` finds a valid access token, else the client
    address (already corrected for trusted proxies by the proxy-headers middleware).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        identify: Identify,
        prefix: str,
        auth_paths: frozenset[str],
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.identify = identify
        self.prefix = prefix
        self.auth_paths = auth_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.limiter.enabled
            or not scope["path"].startswith(self.prefix)
        ):
            await self.app(scope, receive, send)
            return
        try:
            decision = await self._decide(scope)
        except RateLimitUnavailable as exc:
            await send_problem(
                send,
                scope,
                exc.status,
                exc.detail,
                code=exc.code,
                extra_headers=[(k.lower().encode(), v.encode()) for k, v in exc.headers.items()],
            )
            return
        if not decision.allowed:
            await _too_many(scope, send, decision)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                # A stricter limit applied inside (failed sign-ins) describes itself.
                if not any(name.lower() == b"ratelimit-limit" for name, _ in headers):
                    headers.extend(decision.headers())
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _decide(self, scope: Scope) -> Decision:
        address = client_address(scope)
        if scope["method"] == "POST" and scope["path"] in self.auth_paths:
            auth = await self.limiter.hit("auth", address)
            if not auth.allowed:
                return auth
            general = await self._general(scope, address)
            # The headers describe the budget closer to running out, as the RateLimit drafts
            # ask: a client pacing its sign-ins by them must not be surprised by a 429.
            return auth if general.allowed and auth.remaining < general.remaining else general
        return await self._general(scope, address)

    async def _general(self, scope: Scope, address: str) -> Decision:
        user_id = self.identify(scope)
        if user_id is not None:
            return await self.limiter.hit("user", user_id)
        return await self.limiter.hit("anonymous", address)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def _too_many(scope: Scope, send: Send, decision: Decision) -> None:
    detail = f"Too many requests; retry in {max(decision.reset_after, 1)} s."
    await send_problem(send, scope, 429, detail, extra_headers=decision.headers())
