"""The index: packed locations, exact counters and garbage, the snapshot file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from echofs.worker.stores.volume.index import (
    SNAPSHOT_NAME,
    ChunkIndex,
    Location,
    SnapshotVolume,
    pack,
    read_snapshot,
    unpack,
    write_snapshot,
)
from echofs.worker.stores.volume.records import HEADER_SIZE


@pytest.mark.parametrize("location", [(1, 0, 0), (7, 123_456, 4096),
                                      (2**20, 2**40 - 1, 2**32 - 1)])
def test_locations_pack_and_unpack(location: tuple[int, int, int]) -> None:
    assert unpack(pack(*location)) == Location(*location)


def test_counters_and_garbage_follow_the_records() -> None:
    index = ChunkIndex()
    a, b = "a" * 64, "b" * 64
    assert index.put(a, 1, 0, 100) is True
    assert index.put(b, 1, 149, 50) is True
    assert (len(index), index.bytes) == (2, 150)
    assert index.put(a, 2, 0, 100) is False  # a repair: replaced, counted once
    assert (len(index), index.bytes) == (2, 150)
    assert index.garbage == {1: HEADER_SIZE + 100}
    assert index.delete(b) is True and index.delete(b) is False
    assert (len(index), index.bytes) == (1, 100)
    assert index.garbage == {1: 2 * HEADER_SIZE + 150}
    # compaction moved a's record only if nothing replaced it meanwhile
    assert index.relocate(a, Location(2, 0, 100), 500) is True
    assert index.get(a) == Location(2, 500, 100)
    assert index.relocate(a, Location(2, 0, 100), 900) is False
    assert index.drop_volume(2) == [a] and (len(index), index.bytes) == (0, 0)


def test_snapshot_round_trip(tmp_path: Path) -> None:
    entries = {os.urandom(32).hex(): pack(seq, seq * 1000, seq * 10) for seq in range(1, 500)}
    volumes = [SnapshotVolume(1, 0, 4096, 10), SnapshotVolume(3, 2, 1 << 33, 0)]
    write_snapshot(tmp_path, volumes, entries)
    snapshot = read_snapshot(tmp_path)
    assert snapshot is not None
    assert snapshot.volumes == volumes and snapshot.entries == entries
    assert not list(tmp_path.glob("*.tmp"))
    restored = ChunkIndex.restored(snapshot.entries, {1: 10})
    assert (len(restored), restored.bytes) == (499, sum(s * 10 for s in range(1, 500)))


@pytest.mark.parametrize("cut", [1, 4, 44, 100])
def test_a_damaged_snapshot_is_not_loaded(tmp_path: Path, cut: int) -> None:
    write_snapshot(tmp_path, [SnapshotVolume(1, 0, 10, 0)], {"c" * 64: pack(1, 0, 10)})
    path = tmp_path / SNAPSHOT_NAME
    data = path.read_bytes()
    path.write_bytes(data[:-cut])
    assert read_snapshot(tmp_path) is None
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(flipped))
    assert read_snapshot(tmp_path) is None
    assert read_snapshot(tmp_path / "elsewhere") is None
