"""Opening a store again: snapshot + tail, full rebuild, torn tails cut,
damage in the middle skipped past without losing what follows."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from echofs.core.chunk_codec import EncodedChunk, encode_chunk
from echofs.core.errors import ChunkMissing, CorruptChunk
from echofs.testing.disk import (
    crash_image,
    flip_file_byte,
    flip_stored_byte,
    stored_copies,
    volume_paths,
)
from echofs.worker.stores.volume import VolumeChunkStore
from echofs.worker.stores.volume.index import SNAPSHOT_NAME, read_snapshot
from echofs.worker.stores.volume.records import HEADER_SIZE

OpenStore = Callable[..., Awaitable[VolumeChunkStore]]  # the open_store fixture


def chunk(seed: int | str, size: int = 1000) -> EncodedChunk:
    """A chunk whose frame is about ``size`` bytes (random: LZ4 keeps out)."""
    return encode_chunk(f"volume chunk {seed} ".encode() + os.urandom(size))


async def _usage(store: VolumeChunkStore) -> tuple[int, int]:
    usage = await store.usage()
    return usage.chunk_count, usage.bytes_stored


async def test_reopen_loads_the_snapshot_and_scans_only_the_tail(
        open_store: OpenStore, root: Path, tmp_path: Path) -> None:
    first = [chunk(i) for i in range(5)]
    store = await open_store()
    for enc in first:
        await store.put(enc.chunk_id, enc.frame)
    await store.close()
    snapshot = read_snapshot(root / "volumes")
    assert snapshot is not None and set(snapshot.entries) == {e.chunk_id for e in first}

    store = await open_store()
    assert store.opened_from == "snapshot"
    later = [chunk(f"later {i}") for i in range(3)]
    for enc in later:
        await store.put(enc.chunk_id, enc.frame)
    await store.delete(first[0].chunk_id)
    image = crash_image(root, tmp_path / "image")  # the snapshot predates these

    reopened = await open_store(image)
    assert reopened.opened_from == "snapshot"
    live = first[1:] + later
    assert {i async for i in reopened.list_ids()} == {e.chunk_id for e in live}
    for enc in live:
        assert await reopened.get(enc.chunk_id) == enc.frame
    assert await _usage(reopened) == (len(live), sum(len(e.frame) for e in live))
    with pytest.raises(ChunkMissing):
        await reopened.get(first[0].chunk_id)


async def test_rebuild_without_a_snapshot(open_store: OpenStore, root: Path) -> None:
    chunks = [chunk(i, size=3000) for i in range(30)]
    store = await open_store(volume_size=16 * 1024)
    for enc in chunks:
        await store.put(enc.chunk_id, enc.frame)
    for enc in chunks[:10]:
        await store.delete(enc.chunk_id)
    expected = await _usage(store)
    await store.close()
    assert len(volume_paths(root)) > 2
    (root / "volumes" / SNAPSHOT_NAME).unlink()

    store = await open_store(volume_size=16 * 1024)
    assert store.opened_from == "scan"
    assert await _usage(store) == expected
    for enc in chunks[10:]:
        assert await store.get(enc.chunk_id) == enc.frame
    for enc in chunks[:10]:
        assert not await store.has(enc.chunk_id)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "stale volume"])
async def test_a_bad_snapshot_means_a_full_scan(open_store: OpenStore, root: Path,
                                                damage: str) -> None:
    chunks = [chunk(i) for i in range(6)]
    store = await open_store()
    for enc in chunks:
        await store.put(enc.chunk_id, enc.frame)
    await store.close()
    snap = root / "volumes" / SNAPSHOT_NAME
    if damage == "garbage":
        flip_file_byte(snap, 20)
    elif damage == "truncated":
        snap.write_bytes(snap.read_bytes()[:-7])
    else:  # the snapshot claims more of the volume than exists
        (path,) = volume_paths(root)
        os.truncate(path, path.stat().st_size - len(chunks[-1].frame) - HEADER_SIZE)
    store = await open_store()
    assert store.opened_from == "scan"
    survivors = chunks[:-1] if damage == "stale volume" else chunks
    for enc in survivors:
        assert await store.get(enc.chunk_id) == enc.frame


@pytest.mark.parametrize("keep", [1, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 1, 500])
async def test_torn_tail_is_cut_and_earlier_records_are_intact(
        open_store: OpenStore, root: Path, tmp_path: Path, keep: int) -> None:
    chunks = [chunk(i, size=1000) for i in range(4)]
    store = await open_store()
    for enc in chunks:
        await store.put(enc.chunk_id, enc.frame)
    image = crash_image(root, tmp_path / "image")
    (path,) = volume_paths(image)
    last = stored_copies(image)[chunks[-1].chunk_id]
    os.truncate(path, last.offset - HEADER_SIZE + keep)  # the last write, torn

    reopened = await open_store(image)
    for enc in chunks[:-1]:
        assert await reopened.get(enc.chunk_id) == enc.frame
    assert not await reopened.has(chunks[-1].chunk_id)
    assert path.stat().st_size == last.offset - HEADER_SIZE  # cut off the file
    assert await _usage(reopened) == (3, sum(len(e.frame) for e in chunks[:-1]))
    more = chunk("after the crash")
    await reopened.put(more.chunk_id, more.frame)
    await reopened.put(chunks[-1].chunk_id, chunks[-1].frame)  # the client retries
    await reopened.close()
    again = await open_store(image)
    for enc in [*chunks, more]:
        assert await again.get(enc.chunk_id) == enc.frame


async def test_torn_tail_whose_header_landed_but_frame_did_not(
        open_store: OpenStore, root: Path, tmp_path: Path) -> None:
    chunks = [chunk(i) for i in range(3)]
    store = await open_store()
    for enc in chunks:
        await store.put(enc.chunk_id, enc.frame)
    image = crash_image(root, tmp_path / "image")
    # A snapshot is written only after the records it lists were synced, so
    # none can list a torn one; one the background task happened to write
    # after these puts would describe a different crash.
    (image / "volumes" / SNAPSHOT_NAME).unlink(missing_ok=True)
    last = stored_copies(image)[chunks[-1].chunk_id]
    with last.path.open("r+b") as f:  # the size grew, the frame's blocks stayed zero
        f.seek(last.offset + 10)
        f.write(bytes(last.length - 10))
    reopened = await open_store(image)
    assert not await reopened.has(chunks[-1].chunk_id)
    for enc in chunks[:-1]:
        assert await reopened.get(enc.chunk_id) == enc.frame


async def test_bit_flip_in_a_frame_mid_volume_reads_as_corrupt(
        open_store: OpenStore, root: Path) -> None:
    chunks = [chunk(i) for i in range(5)]
    store = await open_store()
    for enc in chunks:
        await store.put(enc.chunk_id, enc.frame)
    flip_stored_byte(root, chunks[2].chunk_id, offset=100)
    with pytest.raises(CorruptChunk):  # the running store catches it too
        await store.get(chunks[2].chunk_id)
    await store.close()
    (root / "volumes" / SNAPSHOT_NAME).unlink()  # and so does a full scan

    store = await open_store()
    with pytest.raises(CorruptChunk):
        await store.get(chunks[2].chunk_id)
    assert await store.has(chunks[2].chunk_id)  # still listed: the scrubber reports it
    for enc in chunks[:2] + chunks[3:]:
        assert await store.get(enc.chunk_id) == enc.frame
    # The replicator's repair: the same put again appends a good copy.
    await store.put(chunks[2].chunk_id, chunks[2].frame)
    assert await store.get(chunks[2].chunk_id) == chunks[2].frame
    assert await _usage(store) == (5, sum(len(e.frame) for e in chunks))


async def test_bit_flip_in_a_header_mid_volume_loses_only_that_record(
        open_store: OpenStore, root: Path) -> None:
    chunks = [chunk(i) for i in range(6)]
    store = await open_store()
    for enc in chunks:
        await store.put(enc.chunk_id, enc.frame)
    await store.close()
    (root / "volumes" / SNAPSHOT_NAME).unlink()
    damaged = stored_copies(root)[chunks[2].chunk_id]
    size = damaged.path.stat().st_size
    flip_file_byte(damaged.path, damaged.offset - HEADER_SIZE + 40)  # its frame length

    store = await open_store()
    assert not await store.has(chunks[2].chunk_id)
    for enc in chunks[:2] + chunks[3:]:
        assert await store.get(enc.chunk_id) == enc.frame
    assert damaged.path.stat().st_size == size  # nothing truncated


async def test_tombstones_survive_reopen(open_store: OpenStore, root: Path) -> None:
    chunks = [chunk(i) for i in range(4)]
    store = await open_store()
    for enc in chunks:
        await store.put(enc.chunk_id, enc.frame)
    await store.delete(chunks[1].chunk_id)
    await store.close()
    for with_snapshot in (True, False):
        if not with_snapshot:
            (root / "volumes" / SNAPSHOT_NAME).unlink()
        store = await open_store()
        assert not await store.has(chunks[1].chunk_id)
        assert {i async for i in store.list_ids()} == {
            e.chunk_id for e in chunks if e is not chunks[1]}
        await store.close()


async def test_leftover_temp_files_and_replaced_generations_are_removed(
        open_store: OpenStore, root: Path) -> None:
    enc = chunk("kept")
    store = await open_store()
    await store.put(enc.chunk_id, enc.frame)
    await store.close()
    volumes = root / "volumes"
    (path,) = volume_paths(root)
    (volumes / "00000001.1.vol.tmp").write_bytes(b"half a compaction")
    (volumes / "index.snap.tmp").write_bytes(b"half a snapshot")
    # A newer generation (complete) next to the one it replaced.
    (volumes / "00000001.1.vol").write_bytes(path.read_bytes())
    store = await open_store()
    assert sorted(p.name for p in volumes.iterdir()) == [
        "00000001.1.vol", "LOCK", "index.snap"]
    assert await store.get(enc.chunk_id) == enc.frame


async def test_a_second_process_cannot_open_the_store(open_store: OpenStore, root: Path) -> None:
    from echofs.worker.stores.volume.store import StoreInUse

    await open_store()
    with pytest.raises(StoreInUse):
        await VolumeChunkStore(root).open()
