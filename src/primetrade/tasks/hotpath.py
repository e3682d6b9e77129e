"""Warm pages of the task list, answered in front of the framework.

A page of `GET /api/v1/tasks` that is in the cache needs four things: the token's signature
(the codec remembers its verdicts), its denial, the cached principal and the cached page. The
last three are one read of the cache store (one MGET in Redis). Routing, dependency injection
and query validation cost several times that read, so this middleware answers such a request
itself. It sits innermost: request ids, metrics, access logs, security headers, CORS, gzip,
body limits, rate limits and HEAD apply to its answers exactly as to the full path's.

It answers only what the full path would answer the same way from the cache. Anything else
(no bearer token, an invalid or revoked one, a principal or page not in the cache or stale, a
query string this process has not seen validated, a store failure) goes to the full path,
which answers as it always did and fills the cache for the next time.

The query string is never parsed here. The full path reports the cache key its validated
query maps to (`remember_query`), and this process remembers it for that exact raw string, so
the keys cannot disagree. Why not a framework feature: FastAPI has no cache-aware shortcut
that runs before dependency resolution, which is where the time goes.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from primetrade.auth.service import PRINCIPAL_CACHE, cached_user, principal_entry
from primetrade.auth.tokens import InvalidToken
from primetrade.kit.cache import Entry, entry_id
from primetrade.kit.metrics import CACHE_REQUESTS
from primetrade.kit.middleware import bearer_token, first_header
from primetrade.kit.redisstore import StoreUnavailable
from primetrade.kit.responses import entry_response
from primetrade.runtime import Runtime
from primetrade.tasks.service import LIST_CACHE, list_entry

_QUERY_KEY = "primetrade.task_list_query_key"
# Raw query strings remembered per process, and the longest one worth remembering.
MAX_QUERY_STRINGS = 4096
MAX_QUERY_BYTES = 2048


def remember_query(scope: Scope, query_key: str) -> None:
    """Tell the middleware which cache key the request's query string maps to."""
    scope[_QUERY_KEY] = query_key


class CachedTaskListMiddleware:
    """Answer `GET <path>` from the cache when the principal and the page are both there."""

    def __init__(self, app: ASGIApp, *, runtime: Runtime, path: str) -> None:
        self.app = app
        self.runtime = runtime
        self.path = path
        self._query_keys: dict[bytes, str] = {}
        # The full path's route, learnt with the first query key: what metrics and access
        # logs name a request by.
        self._route: object = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        raw_query: bytes = scope["query_string"]
        query_key = self._query_keys.get(raw_query)
        if query_key is not None and self.runtime.cache.enabled:
            entry = await self._cached_page(scope, query_key)
            if entry is not None:
                scope["route"] = self._route
                response = entry_response(entry, first_header(scope, b"if-none-match"))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
        learned = scope.get(_QUERY_KEY)
        if learned is not None and query_key is None and len(raw_query) <= MAX_QUERY_BYTES:
            self._route = scope.get("route")
            if len(self._query_keys) >= MAX_QUERY_STRINGS:
                del self._query_keys[next(iter(self._query_keys))]  # the oldest one
            self._query_keys[raw_query] = learned

    async def _cached_page(self, scope: Scope, query_key: str) -> Entry | None:
        """The page the full path would answer from the cache, or None to let it answer."""
        token = bearer_token(scope)
        if token is None:
            return None
        runtime = self.runtime
        try:
            claims = runtime.tokens.decode_access(token)
        except InvalidToken:
            return None
        denial = runtime.revocations.shared_key(claims.jti)
        if denial is None and await runtime.revocations.is_revoked(claims.jti):
            return None
        principal_id = entry_id(*principal_entry(claims))
        page_id = entry_id(*list_entry(query_key))
        try:
            (principal, page), denied = await runtime.cache.peek(
                claims.user_id, (principal_id, page_id), also=(denial,) if denial else ()
            )
        except StoreUnavailable:
            return None
        if principal is None or page is None or any(denied):
            return None
        if cached_user(principal, claims) is None:
            return None
        # The same counters and access-log field as the full path's hits.
        CACHE_REQUESTS.labels(PRINCIPAL_CACHE, "hit").inc()
        CACHE_REQUESTS.labels(LIST_CACHE, "hit").inc()
        scope["user_id"] = str(claims.user_id)
        return Entry.unpack(page)
