"""Folders of the one-file-per-chunk layout: served as they are by the volume
store, and converted into volumes (``echofs store convert``)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from echofs.cli import main
from echofs.core.chunk_codec import EncodedChunk, encode_chunk
from echofs.core.errors import ChunkMissing
from echofs.testing.disk import flip_stored_byte, stored_copies, volume_paths
from echofs.worker.stores.local import LocalChunkStore
from echofs.worker.stores.volume import VolumeChunkStore
from echofs.worker.stores.volume.legacy import LegacyChunks

OpenStore = Callable[..., Awaitable[VolumeChunkStore]]  # the open_store fixture


def chunk(seed: int | str, size: int = 1000) -> EncodedChunk:
    return encode_chunk(f"legacy chunk {seed} ".encode() + os.urandom(size))


async def _old_layout(root: Path, count: int = 6) -> list[EncodedChunk]:
    old = LocalChunkStore(root)
    await old.open()
    chunks = [chunk(i, size=500 * (i + 1)) for i in range(count)]
    for enc in chunks:
        await old.put(enc.chunk_id, enc.frame)
    await old.close()
    return chunks


def _legacy_files(root: Path) -> set[str]:
    return {p.name for p in (root / "chunks").glob("*/*/*")}


async def test_old_layout_is_served_as_it_is(open_store: OpenStore, root: Path) -> None:
    chunks = await _old_layout(root)
    store = await open_store()
    for enc in chunks:
        assert await store.get(enc.chunk_id) == enc.frame
        assert await store.has(enc.chunk_id)
    assert {i async for i in store.list_ids()} == {e.chunk_id for e in chunks}
    usage = await store.usage()
    assert (usage.chunk_count, usage.bytes_stored) == (
        len(chunks), sum(len(e.frame) for e in chunks))

    new = chunk("new")
    await store.put(new.chunk_id, new.frame)
    assert new.chunk_id not in _legacy_files(root)  # new puts go to volumes
    assert new.chunk_id in stored_copies(root)
    size = sum(p.stat().st_size for p in volume_paths(root))
    await store.put(chunks[0].chunk_id, chunks[0].frame)  # intact there: nothing to do
    assert sum(p.stat().st_size for p in volume_paths(root)) == size

    assert await store.delete(chunks[1].chunk_id) is True
    assert await store.delete(chunks[1].chunk_id) is False
    assert chunks[1].chunk_id not in _legacy_files(root)
    with pytest.raises(ChunkMissing):
        await store.get(chunks[1].chunk_id)
    await store.close()

    store = await open_store()
    assert {i async for i in store.list_ids()} == (
        {e.chunk_id for e in chunks} - {chunks[1].chunk_id}) | {new.chunk_id}
    usage = await store.usage()
    assert usage.chunk_count == len(chunks)


async def test_a_damaged_legacy_copy_is_repaired_into_volumes(
        open_store: OpenStore, root: Path) -> None:
    chunks = await _old_layout(root)
    flip_stored_byte(root, chunks[2].chunk_id, offset=30)
    store = await open_store()
    await store.put(chunks[2].chunk_id, chunks[2].frame)  # the replicator's repair
    assert await store.get(chunks[2].chunk_id) == chunks[2].frame
    assert chunks[2].chunk_id not in _legacy_files(root)
    assert stored_copies(root)[chunks[2].chunk_id].in_volume
    usage = await store.usage()
    assert usage.chunk_count == len(chunks)


async def test_convert_moves_everything_into_volumes(open_store: OpenStore, root: Path) -> None:
    chunks = await _old_layout(root, count=150)
    store = await open_store()
    seen: list[tuple[int, int | None]] = []
    report = await store.convert_legacy(lambda done, total: seen.append((done, total)))
    assert (report.moved, report.corrupt_left) == (150, 0)
    assert report.moved_bytes == sum(len(e.frame) for e in chunks)
    assert seen[-1] == (report.moved_bytes, report.moved_bytes) and len(seen) >= 3
    assert _legacy_files(root) == set()
    await store.close()
    store = await open_store()
    assert all(c.in_volume for c in stored_copies(root).values())
    for enc in chunks:
        assert await store.get(enc.chunk_id) == enc.frame
    usage = await store.usage()
    assert (usage.chunk_count, usage.bytes_stored) == (150, report.moved_bytes)


async def test_an_interrupted_convert_loses_nothing_and_finishes_when_rerun(
        open_store: OpenStore, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = await _old_layout(root, count=100)
    store = await open_store()
    removed = 0
    real_delete = LegacyChunks.delete

    async def dying_delete(self: LegacyChunks, chunk_id: str) -> bool:
        nonlocal removed
        if removed == 70:  # appended, not yet removed: both copies on disk
            raise KeyboardInterrupt
        removed += 1
        return await real_delete(self, chunk_id)

    monkeypatch.setattr(LegacyChunks, "delete", dying_delete)
    with pytest.raises(KeyboardInterrupt):
        await store.convert_legacy()
    monkeypatch.undo()
    await store.close()
    # Groups of 64: the second group's 36 were all appended (one group
    # commit), 6 of their files removed when it stopped.
    assert len(_legacy_files(root)) == 30

    store = await open_store()  # files of what volumes hold are removed
    assert _legacy_files(root) == set()
    usage = await store.usage()
    assert (usage.chunk_count, usage.bytes_stored) == (100, sum(len(e.frame) for e in chunks))
    report = await store.convert_legacy()
    assert report.moved == 0
    for enc in chunks:
        assert await store.get(enc.chunk_id) == enc.frame


async def test_convert_leaves_damaged_files_in_place(open_store: OpenStore, root: Path) -> None:
    chunks = await _old_layout(root)
    flip_stored_byte(root, chunks[3].chunk_id, offset=20)
    store = await open_store()
    report = await store.convert_legacy()
    assert (report.moved, report.corrupt_left) == (len(chunks) - 1, 1)
    assert _legacy_files(root) == {chunks[3].chunk_id}


def test_the_convert_command(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    chunks = asyncio.run(_old_layout(root))
    assert main(["store", "convert", str(root), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"{root}: {len(chunks)} chunks" in out and "moved into volumes" in out
    assert _legacy_files(root) == set()
    assert main(["store", "convert", str(root), "--no-progress"]) == 0  # again: nothing
    assert f"{root}: 0 chunks" in capsys.readouterr().out
    assert main(["store", "convert", str(root.parent / "nothing-here")]) == 2
    assert "holds no chunk store" in capsys.readouterr().err


async def test_the_convert_command_refuses_a_store_in_use(
        open_store: OpenStore, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    await _old_layout(root)
    await open_store()  # a running worker
    code = await asyncio.to_thread(main, ["store", "convert", str(root), "--no-progress"])
    assert code == 2
    assert "in use by another process" in capsys.readouterr().err
