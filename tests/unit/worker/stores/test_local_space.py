"""The one-file-per-chunk store on a disk that fills up, for real (a small
tmpfs): puts past the reserve are refused, and one the disk refuses leaves
no partial temporary file holding on to space."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from echofs.core.chunk_codec import encode_chunk
from echofs.core.space import SpaceReserve
from echofs.disk_space import DiskSpace
from echofs.testing.small_disk import SmallDiskUnavailable, fill_store, small_filesystem
from echofs.worker.stores import local as local_module
from echofs.worker.stores.local import LocalChunkStore

MIB = 1024 * 1024


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    try:
        with small_filesystem(tmp_path / "disk", "3m") as mounted:
            yield mounted
    except SmallDiskUnavailable as exc:
        pytest.skip(str(exc))


async def test_puts_past_the_reserve_are_refused_and_deletes_free_space(disk: Path):
    store = LocalChunkStore(disk / "store", reserve=SpaceReserve(MIB))
    await store.open()
    stored, refusal = await fill_store(store)
    assert "reserve" in str(refusal)
    assert shutil.disk_usage(disk).free >= MIB
    assert (await store.usage()).reserve_bytes == MIB
    for enc in stored:
        assert await store.get(enc.chunk_id) == enc.frame
    for enc in stored:
        assert await store.delete(enc.chunk_id)
    enc = encode_chunk(os.urandom(200 * 1024))
    await store.put(enc.chunk_id, enc.frame)


async def test_a_put_the_disk_refuses_leaves_no_partial_file(
        disk: Path, monkeypatch: pytest.MonkeyPatch):
    # Another writer takes the space between the check and the write.
    monkeypatch.setattr(local_module, "check_room",
                        lambda *args: DiskSpace(1 << 40, 1 << 40))
    store = LocalChunkStore(disk / "store")
    await store.open()
    stored, refusal = await fill_store(store)
    assert "no space left" in str(refusal)
    assert list((disk / "store" / "tmp").iterdir()) == []
    for enc in stored:
        assert await store.get(enc.chunk_id) == enc.frame
