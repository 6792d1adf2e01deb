"""VolumeChunkStore specifics beyond the contract: content addressing and
repair, group commit, rollover, failed writes, a wiped disk, ids."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from echofs.core.chunk_codec import EncodedChunk, encode_chunk
from echofs.core.errors import ChunkMissing
from echofs.core.vocabulary import Verdict
from echofs.testing.disk import flip_stored_byte, lose_stored_chunk, volume_paths
from echofs.worker.service import WorkerService
from echofs.worker.stores.volume import VolumeChunkStore
from echofs.worker.stores.volume import appender as appender_module
from echofs.worker.stores.volume.records import HEADER_SIZE

OpenStore = Callable[..., Awaitable[VolumeChunkStore]]  # the open_store fixture


def chunk(seed: int | str, size: int = 1000) -> EncodedChunk:
    return encode_chunk(f"volume chunk {seed} ".encode() + os.urandom(size))


def _disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in volume_paths(root))


async def test_put_of_an_intact_id_appends_nothing(open_store: OpenStore, root: Path) -> None:
    enc = chunk("once")
    store = await open_store()
    await store.put(enc.chunk_id, enc.frame)
    size = _disk_bytes(root)
    await store.put(enc.chunk_id, enc.frame)
    assert _disk_bytes(root) == size


@pytest.mark.parametrize("damage", ["flip", "lost"])
async def test_put_of_a_damaged_id_appends_a_good_copy(
        open_store: OpenStore, root: Path, damage: str) -> None:
    chunks = [chunk(i) for i in range(3)]
    store = await open_store()
    service = WorkerService("w1", store)
    for enc in chunks:
        await store.put(enc.chunk_id, enc.frame)
    victim = chunks[1]
    if damage == "flip":
        flip_stored_byte(root, victim.chunk_id, offset=50)
    else:
        lose_stored_chunk(root, victim.chunk_id)
    assert await service.verify_chunk(victim.chunk_id) == Verdict.CORRUPT
    size = _disk_bytes(root)
    await service.put_chunk(victim.chunk_id, victim.frame)  # what the replicator does
    assert _disk_bytes(root) == size + HEADER_SIZE + len(victim.frame)
    assert await store.get(victim.chunk_id) == victim.frame
    assert await service.verify_chunk(victim.chunk_id) == Verdict.OK
    usage = await store.usage()
    assert (usage.chunk_count, usage.bytes_stored) == (3, sum(len(e.frame) for e in chunks))
    assert store.volume_stats()[0][2] == HEADER_SIZE + len(victim.frame)  # the old copy


async def test_concurrent_puts_share_fdatasyncs(open_store: OpenStore,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store = await open_store()
    syncs = 0
    real = os.fdatasync

    def counting(fd: int) -> None:
        nonlocal syncs
        syncs += 1
        real(fd)

    monkeypatch.setattr(appender_module.os, "fdatasync", counting)
    chunks = [chunk(i) for i in range(64)]
    await asyncio.gather(*(store.put(enc.chunk_id, enc.frame) for enc in chunks))
    assert syncs < len(chunks) // 4
    for enc in chunks:
        assert await store.get(enc.chunk_id) == enc.frame


async def test_nothing_is_acknowledged_before_its_fdatasync(
        open_store: OpenStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store = await open_store()
    release = asyncio.Event()
    loop = asyncio.get_running_loop()
    synced = []
    real = os.fdatasync

    def held_sync(fd: int) -> None:
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result()
        real(fd)
        synced.append(fd)

    monkeypatch.setattr(appender_module.os, "fdatasync", held_sync)
    enc = chunk("held")
    put = asyncio.create_task(store.put(enc.chunk_id, enc.frame))
    await asyncio.sleep(0.05)
    assert not put.done() and not synced
    assert not await store.has(enc.chunk_id)  # not indexed either
    release.set()
    await put
    assert synced and await store.has(enc.chunk_id)


async def test_volumes_roll_over_at_their_size(open_store: OpenStore, root: Path) -> None:
    store = await open_store(volume_size=8 * 1024)
    chunks = [chunk(i, size=1500) for i in range(20)]
    for enc in chunks:
        await store.put(enc.chunk_id, enc.frame)
    paths = volume_paths(root)
    assert len(paths) >= 4
    assert all(p.stat().st_size <= 8 * 1024 for p in paths)
    big = chunk("bigger than a volume", size=20 * 1024)  # gets one of its own
    await store.put(big.chunk_id, big.frame)
    assert volume_paths(root)[-1].stat().st_size == HEADER_SIZE + len(big.frame)
    for enc in [*chunks, big]:
        assert await store.get(enc.chunk_id) == enc.frame


async def test_a_failed_write_fails_its_puts_and_the_store_goes_on(
        open_store: OpenStore, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = await open_store()
    before = chunk("before")
    await store.put(before.chunk_id, before.frame)

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(appender_module.os, "fdatasync", failing)
    lost = chunk("lost")
    with pytest.raises(OSError):
        await store.put(lost.chunk_id, lost.frame)
    assert not await store.has(lost.chunk_id)
    monkeypatch.undo()
    after = chunk("after")
    await store.put(after.chunk_id, after.frame)
    assert len(volume_paths(root)) == 2  # the failed volume was left, cut back
    assert volume_paths(root)[0].stat().st_size == HEADER_SIZE + len(before.frame)
    for enc in (before, after):
        assert await store.get(enc.chunk_id) == enc.frame
    await store.close()
    reopened = await open_store()
    assert {i async for i in reopened.list_ids()} == {before.chunk_id, after.chunk_id}


async def test_a_wiped_disk_is_noticed_and_refilled(open_store: OpenStore, root: Path) -> None:
    store = await open_store()
    service = WorkerService("w1", store)
    old = chunk("old")
    await store.put(old.chunk_id, old.frame)
    shutil.rmtree(root)
    assert await service.verify_chunk(old.chunk_id) == Verdict.MISSING
    with pytest.raises(ChunkMissing):
        await store.get(old.chunk_id)
    new = chunk("new")
    await store.put(new.chunk_id, new.frame)  # folders made again, a new volume
    await store.put(old.chunk_id, old.frame)  # the repair
    for enc in (old, new):
        assert await store.get(enc.chunk_id) == enc.frame
    usage = await store.usage()
    assert usage.chunk_count == 2
    await store.close()
    reopened = await open_store()
    assert {i async for i in reopened.list_ids()} == {old.chunk_id, new.chunk_id}


async def test_a_wiped_disk_lists_nothing(open_store: OpenStore, root: Path) -> None:
    """Listing tells what is on disk (the sweeper and operators rely on it),
    not what the index remembers."""
    store = await open_store()
    old = chunk("old")
    await store.put(old.chunk_id, old.frame)
    shutil.rmtree(root)
    assert [i async for i in store.list_ids()] == []
    assert not await store.has(old.chunk_id)
    await store.close()


async def test_writes_fail_while_the_root_is_not_a_folder(open_store: OpenStore,
                                                          root: Path) -> None:
    store = await open_store()
    enc = chunk("x")
    await store.put(enc.chunk_id, enc.frame)
    # The store's own background work (its index snapshot) may still be
    # writing into the folder, so removing it can meet a file made meanwhile.
    for _ in range(100):
        shutil.rmtree(root, ignore_errors=True)
        if not root.exists():
            break
        await asyncio.sleep(0.01)
    root.write_bytes(b"not a directory")
    other = chunk("y")
    for _ in range(2):
        with pytest.raises(OSError):
            await store.put(other.chunk_id, other.frame)
    root.unlink()
    await store.put(other.chunk_id, other.frame)
    assert await store.get(other.chunk_id) == other.frame


@pytest.mark.parametrize("bad_id", ["", "not-a-chunk-id", "A" * 64, "a" * 63, "../" + "a" * 61])
async def test_non_hex_id_raises_value_error(open_store: OpenStore, bad_id: str) -> None:
    store = await open_store()
    for call in (store.put(bad_id, b"frame"), store.get(bad_id), store.has(bad_id),
                 store.delete(bad_id)):
        with pytest.raises(ValueError):
            await call


async def test_large_frames_are_read_off_the_loop(open_store: OpenStore) -> None:
    store = await open_store()
    big = chunk("big", size=2 * 1024 * 1024)
    await store.put(big.chunk_id, big.frame)
    assert await store.get(big.chunk_id) == big.frame


async def test_put_delete_put_of_one_id_keeps_counters_exact(open_store: OpenStore) -> None:
    store = await open_store()
    enc = chunk("cycle")
    results = await asyncio.gather(
        store.put(enc.chunk_id, enc.frame), store.delete(enc.chunk_id),
        store.put(enc.chunk_id, enc.frame))
    present = await store.has(enc.chunk_id)
    usage = await store.usage()
    assert (usage.chunk_count, usage.bytes_stored) == (
        (1, len(enc.frame)) if present else (0, 0))
    assert results[0] is None and results[2] is None


async def test_small_records_are_read_on_the_loop(open_store: OpenStore,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from echofs.worker.stores.volume import store as store_module

    store = await open_store()
    small, big = chunk("small", size=60_000), chunk("big", size=70_000)
    for enc in (small, big):
        await store.put(enc.chunk_id, enc.frame)
    hops: list[object] = []
    real = asyncio.to_thread

    async def counting(func, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        hops.append(func)
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(store_module.asyncio, "to_thread", counting)
    assert await store.get(small.chunk_id) == small.frame
    assert hops == []  # a page-cache pread costs less than a thread hop
    assert await store.get(big.chunk_id) == big.frame
    assert len(hops) == 1
