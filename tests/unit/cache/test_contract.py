"""The cache contract (echofs/cache/base.py), on every implementation: in-process,
and Redis (the real server of ECHOFS_TEST_REDIS_URL, a key prefix per test)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from echofs.cache.base import Cache, decode_manifest, encode_manifest
from echofs.cache.memory import InProcessCache
from echofs.cache.redis_backend import RedisCache
from echofs.core.manifest import ChunkRef, VersionRecord


def version(file_id: str = "f1", number: int = 1, chunks: int = 2,
            blake3: str = "ab" * 32) -> VersionRecord:
    return VersionRecord(
        file_id=file_id, version=number, size=100 * chunks, blake3=blake3,
        chunk_count=chunks, mode="strong", replicas_acked=3, created_at=1_800_000_000.5,
        chunks=tuple(ChunkRef(i, f"{i:02x}" * 32, i * 100, 100, i % 2 == 0, ("w1", "w2"))
                     for i in range(chunks)),
    )


@pytest.fixture(params=["in-process", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "in-process":
        c: Cache = InProcessCache()
    else:
        url = request.getfixturevalue("redis_url")
        c = RedisCache(url, prefix=f"echofs-test-{uuid.uuid4().hex[:8]}")
    await c.start()
    try:
        yield c
    finally:
        await c.close()


async def test_miss_then_hit(cache: Cache) -> None:
    assert await cache.get_manifest("f1", 1) is None
    await cache.put_manifest(version())
    got = await cache.get_manifest("f1", 1)
    assert got is not None
    assert got.blake3 == version().blake3
    assert [(c.seq, c.chunk_id, c.offset, c.size, c.compressed) for c in got.chunks] == [
        (c.seq, c.chunk_id, c.offset, c.size, c.compressed) for c in version().chunks]


async def test_replicas_are_never_cached(cache: Cache) -> None:
    await cache.put_manifest(version())
    got = await cache.get_manifest("f1", 1)
    assert got is not None
    assert all(c.replicas == () for c in got.chunks)


async def test_versions_are_kept_apart(cache: Cache) -> None:
    await cache.put_manifest(version(number=1, blake3="11" * 32))
    await cache.put_manifest(version(number=2, blake3="22" * 32))
    one, two = await cache.get_manifest("f1", 1), await cache.get_manifest("f1", 2)
    assert one is not None and one.blake3 == "11" * 32
    assert two is not None and two.blake3 == "22" * 32
    assert await cache.get_manifest("f1", 3) is None


async def test_invalidate_drops_every_version_of_that_file_only(cache: Cache) -> None:
    for number in (1, 2, 3):
        await cache.put_manifest(version("f1", number))
    await cache.put_manifest(version("f2", 1))
    await cache.invalidate("f1")
    for number in (1, 2, 3):
        assert await cache.get_manifest("f1", number) is None
    assert await cache.get_manifest("f2", 1) is not None


async def test_invalidate_unknown_file_is_harmless(cache: Cache) -> None:
    await cache.invalidate("never-seen")


async def test_empty_manifest(cache: Cache) -> None:
    await cache.put_manifest(version(chunks=0))
    got = await cache.get_manifest("f1", 1)
    assert got is not None and got.chunks == ()


async def test_rate_limit_counts_per_user(cache: Cache) -> None:
    user, other = f"u-{uuid.uuid4().hex[:6]}", f"v-{uuid.uuid4().hex[:6]}"
    assert [await cache.hit(user, 3) for _ in range(3)] == [None, None, None]
    wait = await cache.hit(user, 3)
    assert wait is not None and 0 < wait <= 60
    assert await cache.hit(other, 3) is None


def test_manifest_encoding_round_trips() -> None:
    original = version(chunks=3)
    decoded = decode_manifest(encode_manifest(original))
    assert decoded is not None
    assert decoded.chunks == tuple(
        ChunkRef(c.seq, c.chunk_id, c.offset, c.size, c.compressed) for c in original.chunks)
    assert (decoded.version, decoded.size, decoded.blake3, decoded.mode) == (
        original.version, original.size, original.blake3, original.mode)


@pytest.mark.parametrize("raw", [b"", b"not json", b'{"version": 1}', b"[1, 2]"])
def test_undecodable_entry_is_a_miss(raw: bytes) -> None:
    assert decode_manifest(raw) is None


def test_in_process_cache_is_bounded_by_chunk_references() -> None:
    cache = InProcessCache(max_chunks=100)
    for number in range(1, 30):
        cache.put_local(version(number=number, chunks=5))
    assert len(cache) == 20  # 20 manifests of 5 chunk references
    assert cache.get_local("f1", 1) is None and cache.get_local("f1", 29) is not None
    cache.put_local(version(file_id="huge", chunks=50))  # > a tenth: not cached
    assert cache.get_local("huge", 1) is None
