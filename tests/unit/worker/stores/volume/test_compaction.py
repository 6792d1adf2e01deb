"""Compaction: space comes back, nothing live is lost, reads and writes go
on while it runs, tombstones outlive the puts they cancel."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from echofs.core.chunk_codec import EncodedChunk, encode_chunk
from echofs.core.errors import ChunkMissing
from echofs.testing.disk import volume_paths
from echofs.worker.stores.volume import VolumeChunkStore
from echofs.worker.stores.volume import compaction as compaction_module
from echofs.worker.stores.volume.index import SNAPSHOT_NAME

OpenStore = Callable[..., Awaitable[VolumeChunkStore]]  # the open_store fixture
SMALL = {"volume_size": 16 * 1024, "compact_ratio": 0.5}


def chunk(seed: int | str, size: int = 1000) -> EncodedChunk:
    return encode_chunk(f"volume chunk {seed} ".encode() + os.urandom(size))


def _disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in volume_paths(root))


async def _idle(store: VolumeChunkStore) -> None:
    """Let the background compaction finish what it started."""
    async with store._compacting:
        pass


async def test_compaction_reclaims_space_and_keeps_every_live_chunk(
        open_store: OpenStore, root: Path) -> None:
    store = await open_store(**SMALL)
    chunks = [chunk(i, size=2000) for i in range(40)]
    for enc in chunks:
        await store.put(enc.chunk_id, enc.frame)
    full = _disk_bytes(root)
    doomed, kept = chunks[::3] + chunks[1::3], chunks[2::3]
    for enc in doomed:
        await store.delete(enc.chunk_id)
    await store.compact()
    await _idle(store)
    assert _disk_bytes(root) < full / 2
    assert any(".1.vol" in p.name for p in volume_paths(root))
    for enc in kept:
        assert await store.get(enc.chunk_id) == enc.frame
    for enc in doomed:
        with pytest.raises(ChunkMissing):
            await store.get(enc.chunk_id)
    usage = await store.usage()
    assert (usage.chunk_count, usage.bytes_stored) == (len(kept), sum(len(e.frame) for e in kept))
    for with_snapshot in (True, False):  # and so it stays after a restart
        await store.close()
        if not with_snapshot:
            (root / "volumes" / SNAPSHOT_NAME).unlink()
        store = await open_store(**SMALL)
        assert {i async for i in store.list_ids()} == {e.chunk_id for e in kept}
        for enc in kept:
            assert await store.get(enc.chunk_id) == enc.frame


async def test_a_fully_dead_volume_is_deleted(open_store: OpenStore, root: Path) -> None:
    store = await open_store(**SMALL)
    first = [chunk(i, size=3000) for i in range(4)]  # fills volume 1
    for enc in first:
        await store.put(enc.chunk_id, enc.frame)
    later = chunk("in volume 2", size=3000)
    await store.put(later.chunk_id, later.frame)
    await store.put(chunk("more").chunk_id, chunk("more").frame)
    for enc in first:
        await store.delete(enc.chunk_id)
    await store.compact()
    await _idle(store)
    assert "00000001.vol" not in {p.name for p in volume_paths(root)}
    assert await store.get(later.chunk_id) == later.frame


async def test_tombstone_survives_while_an_older_volume_holds_its_put(
        open_store: OpenStore, root: Path) -> None:
    options = {"volume_size": 8 * 1024, "compact_ratio": 0.6}
    store = await open_store(**options)
    old, keeper = chunk("old", size=3000), chunk("keeper", size=4000)
    for enc in (old, keeper):
        await store.put(enc.chunk_id, enc.frame)  # volume 1
    doomed = [chunk(f"doomed {i}", size=3000) for i in range(2)]
    for enc in doomed:
        await store.put(enc.chunk_id, enc.frame)  # volume 2
    await store.delete(old.chunk_id)  # its tombstone: volume 2 as well
    for enc in doomed:
        await store.delete(enc.chunk_id)
    later = chunk("later", size=5000)
    await store.put(later.chunk_id, later.frame)  # seals volume 2
    await store.compact()
    await _idle(store)
    names = {p.name for p in volume_paths(root)}
    # Volume 1 (old put dead, under the threshold) stays; volume 2 was
    # compacted to nothing but the tombstone that still cancels it.
    assert "00000001.vol" in names and "00000002.1.vol" in names
    await store.close()
    (root / "volumes" / SNAPSHOT_NAME).unlink()  # replay everything
    store = await open_store(**options)
    assert not await store.has(old.chunk_id)
    assert {i async for i in store.list_ids()} == {keeper.chunk_id, later.chunk_id}


async def test_reads_and_writes_during_compaction_all_succeed(
        open_store: OpenStore, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = await open_store(volume_size=32 * 1024, compact_ratio=0.3)
    chunks = [chunk(i, size=random.choice([500, 3000, 70_000])) for i in range(60)]
    for enc in chunks:
        await store.put(enc.chunk_id, enc.frame)
    doomed = chunks[::2]
    live = {enc.chunk_id: enc for enc in chunks[1::2]}

    # Slow each copy down so the traffic below really overlaps compaction.
    real_write = compaction_module.write_generation

    def slow_write(*args, **kwargs):  # type: ignore[no-untyped-def]
        import time

        time.sleep(0.02)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(compaction_module, "write_generation", slow_write)
    # The deletes wake the background compactor, which may get to the
    # volumes before the explicit compact() below: count what either frees.
    freed = 0
    real_compact = store._compactor.compact

    async def counted_compact(seq: int) -> int:
        nonlocal freed
        done = await real_compact(seq)
        freed += done
        return done

    monkeypatch.setattr(store._compactor, "compact", counted_compact)
    for enc in doomed:
        await store.delete(enc.chunk_id)
    errors: list[BaseException] = []
    stop = asyncio.Event()

    steady = dict(live)  # read throughout, never deleted

    async def reader() -> None:
        ids = list(steady)
        while not stop.is_set():
            chunk_id = random.choice(ids)
            try:
                assert await store.get(chunk_id) == steady[chunk_id].frame
            except BaseException as exc:  # collected, asserted below
                errors.append(exc)
            await asyncio.sleep(0)

    async def writer() -> None:
        written: list[str] = []
        n = 0
        while not stop.is_set():
            enc = chunk(f"during {n}", size=random.choice([800, 5000]))
            await store.put(enc.chunk_id, enc.frame)
            live[enc.chunk_id] = enc
            written.append(enc.chunk_id)
            if n % 3 == 2:
                victim = written.pop(0)
                assert await store.delete(victim)
                del live[victim]
            n += 1

    tasks = [asyncio.create_task(reader()) for _ in range(4)] + [asyncio.create_task(writer())]
    await store.compact()
    await _idle(store)
    stop.set()
    await asyncio.gather(*tasks)
    assert freed > 0
    assert errors == []
    for chunk_id, enc in live.items():
        assert await store.get(chunk_id) == enc.frame
    assert {i async for i in store.list_ids()} == set(live)
    usage = await store.usage()
    assert (usage.chunk_count, usage.bytes_stored) == (
        len(live), sum(len(e.frame) for e in live.values()))
    await store.close()
    store = await open_store(volume_size=32 * 1024, compact_ratio=0.3)
    assert {i async for i in store.list_ids()} == set(live)
    for chunk_id, enc in live.items():
        assert await store.get(chunk_id) == enc.frame


async def test_a_read_in_flight_keeps_the_old_file_open(
        open_store: OpenStore, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = await open_store(volume_size=256 * 1024, compact_ratio=0.1)
    big = chunk("big", size=200_000)  # read in a thread
    dead = chunk("dead", size=40_000)
    for enc in (big, dead):
        await store.put(enc.chunk_id, enc.frame)  # both in volume 1
    await store.delete(dead.chunk_id)
    from echofs.worker.stores.volume import store as store_module

    entered, release = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    real_read = store_module.read_frame

    def held_read(*args, **kwargs):  # type: ignore[no-untyped-def]
        loop.call_soon_threadsafe(entered.set)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result()
        return real_read(*args, **kwargs)

    monkeypatch.setattr(store_module, "read_frame", held_read)
    read = asyncio.create_task(store.get(big.chunk_id))
    await entered.wait()
    monkeypatch.undo()
    filler = chunk("filler", size=100_000)
    await store.put(filler.chunk_id, filler.frame)  # seals volume 1
    await store.compact()
    await _idle(store)
    names = {p.name for p in volume_paths(root)}
    assert "00000001.1.vol" in names and "00000001.vol" not in names
    release.set()  # the parked read goes on in the deleted, still open file
    assert await read == big.frame
    assert await store.get(big.chunk_id) == big.frame  # the new generation
