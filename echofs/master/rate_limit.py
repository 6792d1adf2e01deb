"""Per-user request limits on the files API (``RATE_LIMIT_PER_MINUTE``).

Runs after authentication, so a signed-in user is counted by name. Counted
in the master's cache: in Redis, one count per user across every
master; in-process (or while Redis is away), per master. Over the limit, a
request gets 429 ``rate_limited`` with ``Retry-After``. Health and metrics
are never limited. Sign-in attempts have limits of their own, counted the
same way (:mod:`echofs.auth.attempt_limits`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from echofs.auth.attempt_limits import charge
from echofs.cache.base import Cache
from echofs.serving.middleware import facts

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_LIMITED_PREFIX = "/api/v1/files"
# Who a request counts against: the authenticated user, else (open mode)
# the ``user_id`` query parameter, else the single local user.
_DEFAULT_USER = "local"


def rate_limit_middleware(cache: Cache, per_minute: int):  # type: ignore[no-untyped-def]
    @web.middleware
    async def limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(_LIMITED_PREFIX):
            user = facts(request).user or request.query.get("user_id") or _DEFAULT_USER
            await charge(cache, user, per_minute, f"user {user!r}")
        return await handler(request)

    return limit
