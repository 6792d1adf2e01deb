"""The cache shared by masters, in Redis (``redis.asyncio``).

- Manifests: a hash per file, ``PREFIX:manifest:FILE_ID`` (field = version
  number, value = JSON, an hour to live), in front of which each master keeps
  its own in-process copy. ``invalidate`` deletes the hash and publishes the
  file id on ``PREFIX:invalidate``; every master, subscribed, drops its copy.
- Rate limits: one counter per user and minute, ``PREFIX:rate:USER:MINUTE``.

Redis is an accelerator, never a dependency: any Redis error marks it away
(logged once), and until it answers again every call takes the path that
needs no Redis — manifests from the database, limits counted by this master
alone — so no request fails because of it. A background task probes it; when
it is back (logged once) the subscription is renewed *before* the local copies
are cleared and used again, since invalidations sent meanwhile were missed.
Commands get no retries and short timeouts, so a Redis that vanishes costs one
request at most half a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from echofs.cache.base import Cache, decode_manifest, encode_manifest, without_replicas
from echofs.cache.memory import InProcessCache
from echofs.core.manifest import VersionRecord

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_REDIS_DOWN = (RedisError, OSError, asyncio.TimeoutError)
_MANIFEST_TTL = 3600


class RedisCache(Cache):
    def __init__(self, url: str, *, prefix: str = "echofs", timeout: float = 0.5,
                 probe_interval: float = 0.5) -> None:
        self.url = url
        self.prefix = prefix
        self.description = f"redis {url}"
        self.channel = f"{prefix}:invalidate"
        self.probe_interval = probe_interval
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0))
        # Copies of manifests held here, and the limits used while Redis is away.
        self.local = InProcessCache()
        self.available = False
        self._pubsub: PubSub | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False

    # -- connection and health ---------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._connect()
        except _REDIS_DOWN as exc:
            log.warning("Redis at %s unreachable (%s): serving from the database until it "
                        "answers", self.url, exc)
        else:
            self.available = True
            log.info("shared cache: Redis at %s", self.url)
        self._supervisor = asyncio.create_task(self._supervise(), name="redis-cache")

    async def _connect(self) -> None:
        # Connections pooled before an outage may be dead (a restarted Redis
        # closed them): start afresh rather than meet them one failure at a time.
        await self._client.connection_pool.disconnect()
        await self._client.ping()
        pubsub = self._client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
        except BaseException:
            await pubsub.aclose()
            raise
        await self._close_pubsub()
        self._pubsub = pubsub

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*_REDIS_DOWN):
                await pubsub.aclose()

    def _went_away(self, exc: BaseException) -> None:
        if self.available:
            self.available = False
            log.warning("Redis at %s unreachable (%s): serving from the database until it "
                        "answers again", self.url, exc)

    async def _supervise(self) -> None:
        while not self._closing:
            if self.available:
                try:
                    await self._listen()
                except _REDIS_DOWN as exc:
                    self._went_away(exc)
                continue
            await asyncio.sleep(self.probe_interval)
            try:
                await self._connect()
            except _REDIS_DOWN:
                continue
            # Subscribed again; what was published meanwhile is lost, so the
            # local copies go before they are trusted again.
            self.local.clear_local()
            self.available = True
            log.info("Redis at %s is back: shared cache and limits in use again", self.url)

    async def _listen(self) -> None:
        while self.available and self._pubsub is not None:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True,
                                                     timeout=1.0)
            if message is not None and message.get("type") == "message":
                self.local.drop_local(message["data"].decode())

    async def _call(self, command: Callable[[], Awaitable[_T]]) -> _T | None:
        """Run a Redis command if Redis is there; None if it is not (or just left)."""
        if not self.available:
            return None
        try:
            return await command()
        except _REDIS_DOWN as exc:
            self._went_away(exc)
            return None

    async def close(self) -> None:
        self._closing = True
        self.available = False
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        await self._close_pubsub()
        with contextlib.suppress(*_REDIS_DOWN):
            await self._client.aclose()

    # -- manifests ---------------------------------------------------------------------

    def _manifest_key(self, file_id: str) -> str:
        return f"{self.prefix}:manifest:{file_id}"

    async def get_manifest(self, file_id: str, version: int) -> VersionRecord | None:
        if not self.available:
            return None
        found = self.local.get_local(file_id, version)
        if found is not None:
            return found
        raw = await self._call(lambda: self._client.hget(self._manifest_key(file_id),
                                                         str(version)))
        if raw is None:
            return None
        found = decode_manifest(raw)
        if found is not None and self.available:
            self.local.put_local(found)
        return found

    async def put_manifest(self, version: VersionRecord) -> None:
        if not self.available:
            return
        version = without_replicas(version)
        key = self._manifest_key(version.file_id)

        async def store() -> None:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.hset(key, str(version.version), encode_manifest(version))
                pipe.expire(key, _MANIFEST_TTL)
                await pipe.execute()

        await self._call(store)
        if self.available:
            self.local.put_local(version)

    async def invalidate(self, file_id: str) -> None:
        self.local.drop_local(file_id)

        async def broadcast() -> None:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.delete(self._manifest_key(file_id))
                pipe.publish(self.channel, file_id)
                await pipe.execute()

        await self._call(broadcast)

    # -- rate limits -------------------------------------------------------------------

    async def hit(self, user: str, per_minute: int) -> float | None:
        now = time.time()
        window = int(now // 60)
        key = f"{self.prefix}:rate:{user}:{window}"

        async def count() -> int:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, 120)
                counted, _ = await pipe.execute()
            return int(counted)

        counted = await self._call(count)
        if counted is None:  # Redis away: this master limits on its own
            return await self.local.hit(user, per_minute)
        return None if counted <= per_minute else (window + 1) * 60 - now
