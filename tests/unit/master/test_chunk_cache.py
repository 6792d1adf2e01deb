"""The master's small-chunk cache: what it keeps, what it lets go, and that
a read it answers never reaches a worker (and never serves other bytes)."""

from __future__ import annotations

import os

from echofs.core.chunk_codec import encode_chunk
from echofs.master.chunk_cache import MAX_CACHED_CHUNK, ChunkCache
from echofs.master.chunk_io import ChunkIO
from echofs.master.download import ChunkReader
from echofs.testing.fakes import FakeRepository, FakeWorkerClient, PinnedRegistry
from tests.unit.master.test_download import Cluster


def test_keeps_small_chunks_and_refuses_large_ones() -> None:
    cache = ChunkCache(1024 * 1024)
    cache.put("small", b"x" * 100)
    cache.put("large", b"y" * (MAX_CACHED_CHUNK + 1))
    assert cache.get("small") == b"x" * 100
    assert cache.get("large") is None
    assert len(cache) == 1 and cache.size == 100


def test_least_recently_used_goes_first_within_the_budget() -> None:
    cache = ChunkCache(3000)
    for name in ("a", "b", "c"):
        cache.put(name, name.encode() * 1000)
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("d", b"d" * 1000)
    assert cache.get("b") is None
    assert [cache.get(n) is not None for n in ("a", "c", "d")] == [True, True, True]
    assert cache.size == 3000


def test_a_zero_budget_keeps_nothing() -> None:
    cache = ChunkCache(0)
    assert not cache.admits(1)
    cache.put("a", b"a")
    assert cache.get("a") is None and cache.size == 0


async def test_a_cached_chunk_is_read_without_a_worker() -> None:
    cluster = Cluster("w1", "w2")
    cluster.reader = ChunkReader(cluster.repo, cluster.registry,
                                 ChunkIO(cluster.registry, write_timeout=60, read_timeout=60),
                                 ChunkCache(1024 * 1024))
    raw = os.urandom(4096)
    ref = cluster.store(raw, 0, 0, "w1", "w2")
    assert await cluster.reader.read(ref) == raw  # from a worker, then kept
    assert await cluster.reader.read(ref) == raw  # from memory
    assert [cluster.workers[w].get.calls for w in ("w1", "w2")] == [1, 0]


async def test_only_verified_bytes_are_kept() -> None:
    """A corrupt first copy is not cached: the reader falls back, verifies the
    next copy, and keeps that one."""
    workers = {w: FakeWorkerClient(w) for w in ("w1", "w2")}
    registry = PinnedRegistry(workers.values())
    repo = FakeRepository()
    cache = ChunkCache(1024 * 1024)
    reader = ChunkReader(repo, registry, ChunkIO(registry, write_timeout=60, read_timeout=60),
                         cache)
    raw = os.urandom(4096)
    encoded = encode_chunk(raw)
    damaged = bytearray(encoded.frame)
    damaged[-1] ^= 0xFF
    workers["w1"].frames[encoded.chunk_id] = bytes(damaged)
    workers["w2"].frames[encoded.chunk_id] = encoded.frame
    repo.add_chunk(encoded.chunk_id, ("w1", "w2"))
    from echofs.core.manifest import ChunkRef

    ref = ChunkRef(0, encoded.chunk_id, 0, len(raw), encoded.compressed, ("w1", "w2"))
    assert await reader.read(ref) == raw
    assert cache.get(encoded.chunk_id) == raw
