"""The volume store on a disk that fills up, for real (a small tmpfs):
puts past the reserve are refused, deletes never are, a batch the disk
refuses is cut off and the store goes on, and under pressure deleted bytes
go back to the file system without waiting for the usual garbage share."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from echofs.core.chunk_codec import EncodedChunk, encode_chunk
from echofs.core.space import SpaceReserve, SpaceState
from echofs.disk_space import DiskSpace
from echofs.testing.disk import volume_paths
from echofs.testing.small_disk import SmallDiskUnavailable, fill_store, small_filesystem
from echofs.worker.stores.volume import VolumeChunkStore
from echofs.worker.stores.volume import appender as appender_module

MIB = 1024 * 1024


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    try:
        with small_filesystem(tmp_path / "disk", "4m") as mounted:
            yield mounted
    except SmallDiskUnavailable as exc:
        pytest.skip(str(exc))


def incompressible(size: int = 200 * 1024) -> EncodedChunk:
    return encode_chunk(os.urandom(size))


async def test_puts_past_the_reserve_are_refused_and_reads_and_deletes_go_on(disk: Path):
    store = VolumeChunkStore(disk / "store", reserve=SpaceReserve(MIB))
    await store.open()
    try:
        stored, refusal = await fill_store(store)
        assert "reserve" in str(refusal)
        assert len(stored) >= 5
        # The reserve is intact: the refused put wrote nothing.
        assert shutil.disk_usage(disk).free >= MIB
        usage = await store.usage()
        assert usage.reserve_bytes == MIB
        assert usage.space is SpaceState.FULL
        for enc in stored:
            assert await store.get(enc.chunk_id) == enc.frame
        # Deletes (tombstones) are never refused.
        for enc in stored:
            assert await store.delete(enc.chunk_id) is True
    finally:
        await store.close()


async def test_a_batch_the_disk_refuses_is_cut_off_and_the_store_goes_on(
        disk: Path, monkeypatch: pytest.MonkeyPatch):
    # Another writer on the disk takes the space between the writer's check
    # and its write: the check sees room, the disk says ENOSPC mid-append.
    monkeypatch.setattr(appender_module, "measure", lambda path: DiskSpace(1 << 40, 1 << 40))
    store = VolumeChunkStore(disk / "store", reserve=SpaceReserve(MIB))
    await store.open()
    try:
        stored, refusal = await fill_store(store)
        assert "no space left" in str(refusal)
        # Nothing of the refused batch is left in the files: each volume is
        # exactly as long as the records the store acknowledged in it.
        sizes = {seq: size for seq, size, _ in store.volume_stats()}
        for path in volume_paths(disk / "store"):
            seq = int(path.name.split(".")[0])
            assert path.stat().st_size == sizes[seq]
        for enc in stored:
            assert await store.get(enc.chunk_id) == enc.frame
        # Deleting makes room again: with no free space left to compact in,
        # a volume whose records are all deleted goes as a whole.
        for enc in stored:
            assert await store.delete(enc.chunk_id)
        await _until(lambda: _free(disk) > 2 * MIB)
        enc = incompressible()
        await store.put(enc.chunk_id, enc.frame)
        stored = [enc]
    finally:
        await store.close()
    reopened = VolumeChunkStore(disk / "store")
    await reopened.open()
    try:
        for enc in stored:
            assert await reopened.get(enc.chunk_id) == enc.frame
    finally:
        await reopened.close()


async def test_under_pressure_deleted_bytes_go_back_to_the_file_system(disk: Path):
    # Volumes follow the reserve (half of it: five chunks each here), so
    # each can be compacted within it however full the disk.
    store = VolumeChunkStore(disk / "store", reserve=SpaceReserve(MIB))
    await store.open()
    assert store.volume_size == MIB // 2
    try:
        stored, _ = await fill_store(store, 100 * 1024)
        full = _free(disk)
        # Delete every fourth chunk: no volume reaches the usual threshold
        # (half of it garbage), and the one being appended to is among them.
        doomed = stored[::4]
        kept = [enc for enc in stored if enc not in doomed]
        for enc in doomed:
            await store.delete(enc.chunk_id)
        freed = sum(len(enc.frame) for enc in doomed)
        await _until(lambda: _free(disk) >= full + freed * 0.9)
        for enc in kept:
            assert await store.get(enc.chunk_id) == enc.frame
        enc = incompressible()
        await store.put(enc.chunk_id, enc.frame)
    finally:
        await store.close()


def _free(disk: Path) -> int:
    return shutil.disk_usage(disk).free


async def _until(check, within: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError("not within the time allowed")
        await asyncio.sleep(0.02)
