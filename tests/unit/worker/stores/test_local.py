"""LocalChunkStore specifics: on-disk layout, temp files, recounting, ids."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from echofs.core.chunk_codec import EncodedChunk, encode_chunk
from echofs.core.errors import ChunkMissing
from echofs.worker.stores import local as local_module
from echofs.worker.stores import open_store
from echofs.worker.stores.local import LocalChunkStore
from echofs.worker.stores.volume import VolumeChunkStore


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
async def store(root: Path) -> AsyncIterator[LocalChunkStore]:
    s = LocalChunkStore(root)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def _chunk(seed: int | str) -> EncodedChunk:
    return encode_chunk(f"local chunk {seed}".encode() + os.urandom(32))


async def test_open_creates_layout(root: Path) -> None:
    assert not root.exists()
    s = LocalChunkStore(root)
    await s.open()
    assert (root / "chunks").is_dir()
    assert (root / "tmp").is_dir()
    assert str(root) in s.description


async def test_open_removes_leftover_temp_files(root: Path) -> None:
    (root / "tmp").mkdir(parents=True)
    leftover = root / "tmp" / ("ab" * 32 + ".deadbeef")
    leftover.write_bytes(b"half a frame")
    s = LocalChunkStore(root)
    await s.open()
    assert not leftover.exists()
    assert list((root / "tmp").iterdir()) == []
    usage = await s.usage()
    assert usage.chunk_count == 0


async def test_no_temp_file_remains_after_put(store: LocalChunkStore, root: Path) -> None:
    for i in range(5):
        enc = _chunk(i)
        await store.put(enc.chunk_id, enc.frame)
    assert list((root / "tmp").iterdir()) == []


async def test_files_are_laid_out_by_id_prefix(store: LocalChunkStore, root: Path) -> None:
    enc = _chunk("layout")
    cid = enc.chunk_id
    await store.put(cid, enc.frame)
    path = root / "chunks" / cid[:2] / cid[2:4] / cid
    assert path.is_file()
    assert path.read_bytes() == enc.frame
    files = [p for p in (root / "chunks").rglob("*") if p.is_file()]
    assert files == [path]


async def test_reopen_recounts_existing_chunks(store: LocalChunkStore, root: Path) -> None:
    chunks = [_chunk(i) for i in range(6)]
    for enc in chunks:
        await store.put(enc.chunk_id, enc.frame)
    await store.delete(chunks[0].chunk_id)
    await store.close()

    reopened = LocalChunkStore(root)
    await reopened.open()
    usage = await reopened.usage()
    assert usage.chunk_count == 5
    assert usage.bytes_stored == sum(len(enc.frame) for enc in chunks[1:])
    assert {i async for i in reopened.list_ids()} == {enc.chunk_id for enc in chunks[1:]}
    assert await reopened.get(chunks[1].chunk_id) == chunks[1].frame


async def test_reopen_same_instance_recounts(store: LocalChunkStore, root: Path) -> None:
    enc = _chunk("again")
    await store.put(enc.chunk_id, enc.frame)
    await store.open()  # opening twice must not double count
    usage = await store.usage()
    assert (usage.chunk_count, usage.bytes_stored) == (1, len(enc.frame))


@pytest.mark.parametrize(
    "bad_id",
    [
        "",
        "not-a-chunk-id",
        "z" * 64,
        "A" * 64,
        "a" * 63,
        "a" * 65,
        "../" + "a" * 61,
        "ab/cd/" + "a" * 58,
    ],
)
async def test_non_hex_id_raises_value_error(store: LocalChunkStore, bad_id: str) -> None:
    with pytest.raises(ValueError):
        await store.put(bad_id, b"frame")
    with pytest.raises(ValueError):
        await store.get(bad_id)
    with pytest.raises(ValueError):
        await store.has(bad_id)
    with pytest.raises(ValueError):
        await store.delete(bad_id)


async def test_put_recreates_root_deleted_while_open(store: LocalChunkStore, root: Path) -> None:
    before = _chunk("before")
    await store.put(before.chunk_id, before.frame)
    shutil.rmtree(root)
    assert not root.exists()

    with pytest.raises(ChunkMissing):
        await store.get(before.chunk_id)
    await store.usage()  # must not fail while the root is missing

    enc = _chunk("after")
    await store.put(enc.chunk_id, enc.frame)
    assert await store.get(enc.chunk_id) == enc.frame
    assert await store.has(enc.chunk_id)
    assert [i async for i in store.list_ids()] == [enc.chunk_id]


async def test_list_ids_ignores_stray_files(store: LocalChunkStore, root: Path) -> None:
    enc = _chunk("real")
    await store.put(enc.chunk_id, enc.frame)
    stray = root / "chunks" / "ab" / "cd" / "README"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_text("not a chunk")
    assert [i async for i in store.list_ids()] == [enc.chunk_id]


async def test_put_replaces_a_damaged_copy(store: LocalChunkStore, root: Path) -> None:
    enc = _chunk("repair")
    cid = enc.chunk_id
    await store.put(cid, enc.frame)
    path = root / "chunks" / cid[:2] / cid[2:4] / cid
    path.write_bytes(b"garbage")
    await store.put(cid, enc.frame)
    assert await store.get(cid) == enc.frame


def test_open_store_spec(tmp_path: Path) -> None:
    # Volumes are the default local store; this layout is still selectable.
    s = open_store(f"local:{tmp_path}")
    assert isinstance(s, VolumeChunkStore) and s.root == tmp_path
    s = open_store(str(tmp_path))
    assert isinstance(s, VolumeChunkStore) and s.root == tmp_path
    s = open_store(f"files:{tmp_path}")
    assert isinstance(s, LocalChunkStore) and s.root == tmp_path
    with pytest.raises(ValueError):
        open_store("ftp://bucket/prefix")


# BUG (echofs/worker/stores/local.py LocalChunkStore.put/_put_sync): whether a put
# adds a chunk is decided by ``path.exists()`` before the write, outside any lock.
# Two concurrent puts of the same id (two writers of the same content, or a
# repair racing an upload) must be counted once. The barrier makes both writers
# reach the publishing step together, the worst interleaving.
async def test_concurrent_puts_of_same_id_counted_once(
    store: LocalChunkStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    enc = _chunk("same")
    barrier = threading.Barrier(2, timeout=1)
    real_link = os.link

    def link_together(src: object, dst: object) -> None:
        # A store that serialises puts breaks the barrier after 1 s and the
        # writers simply proceed one after the other.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        real_link(src, dst)

    monkeypatch.setattr(local_module.os, "link", link_together)
    await asyncio.gather(store.put(enc.chunk_id, enc.frame), store.put(enc.chunk_id, enc.frame))
    monkeypatch.undo()

    assert await store.get(enc.chunk_id) == enc.frame
    usage = await store.usage()
    assert (usage.chunk_count, usage.bytes_stored) == (1, len(enc.frame))
