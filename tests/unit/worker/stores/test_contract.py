"""The ChunkStore contract (echofs/worker/stores/base.py), run against every backend:
volumes on local disk (the default), one file per chunk on local disk, and S3
as served by moto on loopback (a bucket per test).

To cover a new backend, add a factory to ``STORE_FACTORIES``: it receives
pytest's ``request`` (to reach fixtures such as ``tmp_path`` or the S3
endpoint) and returns an unopened store.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from echofs.core.chunk_codec import EncodedChunk, encode_chunk
from echofs.core.errors import ChunkMissing
from echofs.core.worker_status import StoreUsage
from echofs.worker.stores.base import ChunkStore
from echofs.worker.stores.local import LocalChunkStore
from echofs.worker.stores.volume import VolumeChunkStore


def _local(request: pytest.FixtureRequest) -> ChunkStore:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    return LocalChunkStore(tmp_path / "store")


def _volume(request: pytest.FixtureRequest) -> ChunkStore:
    tmp_path: Path = request.getfixturevalue("tmp_path")
    # Small volumes: the suite's writes roll over several times.
    return VolumeChunkStore(tmp_path / "store", volume_size=16 * 1024)


def _s3(request: pytest.FixtureRequest) -> ChunkStore:
    server = request.getfixturevalue("moto_server")
    return server.store(request.getfixturevalue("s3_bucket"), "w1")


STORE_FACTORIES: dict[str, Callable[[pytest.FixtureRequest], ChunkStore]] = {
    "local": _local,
    "s3": _s3,
    "volume": _volume,
}


@pytest.fixture(params=sorted(STORE_FACTORIES))
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ChunkStore]:
    s = STORE_FACTORIES[request.param](request)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def _chunk(seed: int | str, size: int = 1000) -> EncodedChunk:
    return encode_chunk(f"chunk {seed} ".encode() * (size // 8) + os.urandom(16))


async def _ids(store: ChunkStore) -> list[str]:
    return [chunk_id async for chunk_id in store.list_ids()]


async def test_is_a_chunk_store(store: ChunkStore) -> None:
    assert isinstance(store, ChunkStore)
    assert isinstance(store.description, str) and store.description


async def test_put_then_get_returns_identical_bytes(store: ChunkStore) -> None:
    for enc in (_chunk(1), encode_chunk(b""), encode_chunk(os.urandom(64 * 1024))):
        await store.put(enc.chunk_id, enc.frame)
        got = await store.get(enc.chunk_id)
        assert got == enc.frame
        assert isinstance(got, bytes)


async def test_has(store: ChunkStore) -> None:
    enc, other = _chunk("a"), _chunk("b")
    assert await store.has(enc.chunk_id) is False
    await store.put(enc.chunk_id, enc.frame)
    assert await store.has(enc.chunk_id) is True
    assert await store.has(other.chunk_id) is False


async def test_get_absent_raises_chunk_missing(store: ChunkStore) -> None:
    enc = _chunk("absent")
    with pytest.raises(ChunkMissing) as info:
        await store.get(enc.chunk_id)
    assert info.value.status == 404
    assert info.value.code == "chunk_missing"


async def test_get_after_delete_raises_chunk_missing(store: ChunkStore) -> None:
    enc = _chunk("gone")
    await store.put(enc.chunk_id, enc.frame)
    await store.delete(enc.chunk_id)
    with pytest.raises(ChunkMissing):
        await store.get(enc.chunk_id)
    assert await store.has(enc.chunk_id) is False


async def test_delete_returns_true_then_false(store: ChunkStore) -> None:
    enc = _chunk("del")
    await store.put(enc.chunk_id, enc.frame)
    assert await store.delete(enc.chunk_id) is True
    assert await store.delete(enc.chunk_id) is False


async def test_delete_absent_is_not_an_error(store: ChunkStore) -> None:
    assert await store.delete(_chunk("never").chunk_id) is False
    usage = await store.usage()
    assert (usage.chunk_count, usage.bytes_stored) == (0, 0)


async def test_delete_leaves_other_chunks(store: ChunkStore) -> None:
    a, b = _chunk("keep"), _chunk("drop")
    await store.put(a.chunk_id, a.frame)
    await store.put(b.chunk_id, b.frame)
    await store.delete(b.chunk_id)
    assert await store.get(a.chunk_id) == a.frame


async def test_put_twice_is_harmless_and_counted_once(store: ChunkStore) -> None:
    enc = _chunk("twice")
    await store.put(enc.chunk_id, enc.frame)
    await store.put(enc.chunk_id, enc.frame)
    assert await store.get(enc.chunk_id) == enc.frame
    usage = await store.usage()
    assert usage.chunk_count == 1
    assert usage.bytes_stored == len(enc.frame)
    assert await _ids(store) == [enc.chunk_id]


async def test_usage_tracks_puts_and_deletes(store: ChunkStore) -> None:
    usage = await store.usage()
    assert isinstance(usage, StoreUsage)
    assert (usage.chunk_count, usage.bytes_stored) == (0, 0)

    chunks = [_chunk(i, size=500 * (i + 1)) for i in range(5)]
    total = 0
    for n, enc in enumerate(chunks, start=1):
        await store.put(enc.chunk_id, enc.frame)
        total += len(enc.frame)
        usage = await store.usage()
        assert (usage.chunk_count, usage.bytes_stored) == (n, total)

    for n, enc in enumerate(chunks, start=1):
        assert await store.delete(enc.chunk_id)
        total -= len(enc.frame)
        usage = await store.usage()
        assert (usage.chunk_count, usage.bytes_stored) == (len(chunks) - n, total)

    await store.delete(chunks[0].chunk_id)  # absent: no change, no negative counts
    usage = await store.usage()
    assert (usage.chunk_count, usage.bytes_stored) == (0, 0)


async def test_usage_reports_capacity(store: ChunkStore) -> None:
    usage = await store.usage()
    if usage.capacity_bytes == 0:  # unknown (object stores have no fixed size)
        assert usage.free_bytes == 0
        return
    assert usage.capacity_bytes > 0
    assert 0 <= usage.free_bytes <= usage.capacity_bytes


async def test_list_ids_yields_exactly_the_stored_ids(store: ChunkStore) -> None:
    assert await _ids(store) == []
    chunks = [_chunk(i) for i in range(8)]
    for enc in chunks:
        await store.put(enc.chunk_id, enc.frame)
    await store.delete(chunks[3].chunk_id)
    expected = {enc.chunk_id for i, enc in enumerate(chunks) if i != 3}
    listed = await _ids(store)
    assert len(listed) == len(expected)  # no duplicates
    assert set(listed) == expected


async def test_concurrent_puts_all_readable(store: ChunkStore) -> None:
    chunks = [_chunk(f"concurrent-{i}", size=2000 + i) for i in range(20)]
    assert len({enc.chunk_id for enc in chunks}) == 20
    await asyncio.gather(*(store.put(enc.chunk_id, enc.frame) for enc in chunks))
    frames = await asyncio.gather(*(store.get(enc.chunk_id) for enc in chunks))
    assert frames == [enc.frame for enc in chunks]
    usage = await store.usage()
    assert usage.chunk_count == 20
    assert usage.bytes_stored == sum(len(enc.frame) for enc in chunks)
    assert set(await _ids(store)) == {enc.chunk_id for enc in chunks}


async def test_concurrent_deletes_of_one_chunk_succeed_once(store: ChunkStore) -> None:
    enc = _chunk("race-delete")
    await store.put(enc.chunk_id, enc.frame)
    results = await asyncio.gather(*(store.delete(enc.chunk_id) for _ in range(5)))
    assert results.count(True) == 1
    usage = await store.usage()
    assert (usage.chunk_count, usage.bytes_stored) == (0, 0)
