"""Limits on login and register attempts, per client address and per account.

Counted like the per-user request limits of the files API
(:mod:`echofs.master.rate_limit`), through :func:`charge` and the master's
cache: with Redis, one count per address or account across every master;
in-process (or while Redis is away), per master. Over a limit: 429
``rate_limited`` with ``Retry-After``, answered before any password is hashed.

- **per address** (``LOGIN_LIMIT_PER_ADDRESS``): login and register attempts
  from one client address a minute. The address is the peer of the TCP
  connection: behind a reverse proxy every client shares the proxy's.
- **per account** (``LOGIN_LIMIT_PER_ACCOUNT``): login attempts naming one
  username a minute, right or wrong, existing or not (an answer that differed
  would tell which names exist). It slows guessing one account's password
  from many addresses; the price is that such a flood also locks its owner
  out until the minute is over.
"""

from __future__ import annotations

import math

from aiohttp import web

from echofs.cache.base import Cache
from echofs.core.errors import TooManyRequests


async def charge(cache: Cache, key: str, per_minute: int, subject: str) -> None:
    """Count one request against ``key``; 429 if that went over ``per_minute``."""
    wait = await cache.hit(key, per_minute)
    if wait is not None:
        retry_after = max(1, math.ceil(wait))
        raise TooManyRequests(f"more than {per_minute} requests a minute for {subject}; "
                              f"retry in {retry_after}s", retry_after=retry_after)


class AttemptLimits:
    def __init__(self, cache: Cache, per_address: int, per_account: int) -> None:
        self.cache = cache
        self.per_address = per_address
        self.per_account = per_account

    async def charge_address(self, request: web.Request) -> None:
        if self.per_address > 0:
            address = request.remote or "unknown"
            await charge(self.cache, f"auth-address:{address}", self.per_address,
                         f"sign-ins from {address}")

    async def charge_account(self, username: str) -> None:
        if self.per_account > 0:
            # Usernames cannot hold ':' so these keys never meet a user's own.
            await charge(self.cache, f"auth-account:{username}", self.per_account,
                         f"sign-ins as {username!r}")
