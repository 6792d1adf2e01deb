"""What the Redis cache adds: masters share it, invalidations reach every
master, and Redis going away (or coming back) never fails a call.

The outage tests stop a private redis-server (the shared one stays up)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from echofs.cache.redis_backend import RedisCache
from echofs.core.manifest import VersionRecord
from echofs.testing.services import RedisServer
from echofs.testing.waiting import eventually


def version(file_id: str = "f1", number: int = 1) -> VersionRecord:
    return VersionRecord(file_id=file_id, version=number, size=0, blake3="ab" * 32,
                         chunk_count=0, mode="strong", replicas_acked=3, created_at=1.0)


async def _pair(url: str) -> tuple[RedisCache, RedisCache]:
    prefix = f"echofs-test-{uuid.uuid4().hex[:8]}"
    a = RedisCache(url, prefix=prefix, probe_interval=0.05)
    b = RedisCache(url, prefix=prefix, probe_interval=0.05)
    await a.start()
    await b.start()
    return a, b


@pytest.fixture
async def masters(redis_url: str) -> AsyncIterator[tuple[RedisCache, RedisCache]]:
    a, b = await _pair(redis_url)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_one_master_fills_the_cache_the_other_reads(masters) -> None:
    a, b = masters
    await a.put_manifest(version())
    got = await b.get_manifest("f1", 1)
    assert got is not None and got.version == 1


async def test_invalidation_reaches_the_other_masters_local_copy(masters) -> None:
    a, b = masters
    await a.put_manifest(version())
    assert await b.get_manifest("f1", 1) is not None  # now held locally by b too
    assert b.local.get_local("f1", 1) is not None

    await a.invalidate("f1")

    async def dropped() -> bool:
        return b.local.get_local("f1", 1) is None

    await eventually(dropped, 5, "b's local copy dropped by a's invalidation", every=0.01)
    assert await b.get_manifest("f1", 1) is None


async def test_rate_limit_is_shared_by_masters(masters) -> None:
    a, b = masters
    user = f"u-{uuid.uuid4().hex[:6]}"
    assert await a.hit(user, 2) is None
    assert await b.hit(user, 2) is None
    assert await a.hit(user, 2) is not None


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


async def test_redis_away_and_back(private_redis: RedisServer, caplog) -> None:
    caplog.set_level(logging.INFO, logger="echofs.cache")
    a, b = await _pair(private_redis.url)
    try:
        await a.put_manifest(version())
        assert await b.get_manifest("f1", 1) is not None

        private_redis.stop()
        # Nothing raises, whether or not the loss was noticed yet.
        for _ in range(3):
            await b.get_manifest("f1", 1)
            await b.put_manifest(version("f2"))
            await a.invalidate("f1")
            assert await b.hit("someone", 100) is None

        async def noticed() -> bool:
            return not a.available and not b.available

        await eventually(noticed, 5, "both masters notice Redis is gone", every=0.02)
        # Then manifests miss (reads go to the database) and limits are
        # counted by each master alone.
        assert await b.get_manifest("f1", 1) is None
        assert await b.hit("someone", 100) is None
        away = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(away) == 2  # once per master, not once per call

        private_redis.start()

        async def back() -> bool:
            return a.available and b.available

        await eventually(back, 10, "both masters using Redis again", every=0.02)
        assert len([r for r in caplog.records if "is back" in r.getMessage()]) == 2
        # Copies held from before the outage are gone: invalidations were missed.
        assert b.local.get_local("f1", 1) is None
        await a.put_manifest(version("f3"))
        assert await b.get_manifest("f3", 1) is not None
    finally:
        await a.close()
        await b.close()


async def test_redis_down_at_start_is_not_an_error(caplog) -> None:
    caplog.set_level(logging.INFO, logger="echofs.cache")
    server = RedisServer()  # a free port nobody listens on yet
    cache = RedisCache(server.url, probe_interval=0.05)
    await cache.start()
    try:
        assert not cache.available
        assert await cache.get_manifest("f1", 1) is None
        assert await cache.hit("u", 1) is None
        server.start()

        async def back() -> bool:
            return cache.available

        await eventually(back, 10, "cache using Redis once it starts", every=0.02)
    finally:
        await cache.close()
        server.stop()
