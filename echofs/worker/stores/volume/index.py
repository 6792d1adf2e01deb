"""The in-memory index (chunk id -> where its record is) and its snapshot.

The index is the log replayed: records applied in log order (volume number,
then offset) give it. It lives on the event loop; every change to it is the
application of a record that is already durable, so it never claims more
than the disk holds. Alongside the locations it keeps the counters a store
reports (chunks, live frame bytes, exact) and each volume's garbage: bytes
of put records that a later record replaced or deleted, plus damaged bytes
found by a scan. Tombstones are not counted as garbage: compaction may have
to keep them (see ``compaction``), and a volume of kept tombstones must not
look worth compacting again.

A location is packed into one int (number << 72 | offset << 32 | frame
length): about 40 bytes per entry instead of a tuple of three ints, which
matters at millions of chunks per worker.

Snapshot (``ROOT/volumes/index.snap``), written with temp file + fsync +
rename + directory fsync, so it is either the old one or the whole new one::

    magic "EVX1" | volume count u32
    | per volume: number u32, generation u32, end u64, garbage u64
    | entry count u64 | per entry: chunk id 32 raw bytes, location 12 bytes
    | crc32 of everything before u32

It says: "replaying these volumes up to these ends gives these entries". On
open, a snapshot that checks, whose volumes all exist at the same generation
and at least as long as it says, is loaded and only what lies past its ends
is scanned. Anything else (no snapshot, a damaged one, a volume compacted or
lost since) means a full scan, which is slower but always right.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from echofs.worker.stores.volume.files import TMP_SUFFIX, fsync_dir
from echofs.worker.stores.volume.records import HEADER_SIZE

SNAPSHOT_NAME = "index.snap"
_MAGIC = b"EVX1"
_COUNT = struct.Struct(">I")
_VOLUME = struct.Struct(">IIQQ")
_ENTRIES = struct.Struct(">Q")
_ID_LEN = 32
_LOC_LEN = 12
_ENTRY_LEN = _ID_LEN + _LOC_LEN
_OFFSET_BITS = 40
_LEN_BITS = 32


class Location(NamedTuple):
    seq: int
    offset: int
    frame_len: int

    @property
    def record_len(self) -> int:
        return HEADER_SIZE + self.frame_len


def pack(seq: int, offset: int, frame_len: int) -> int:
    return (seq << (_OFFSET_BITS + _LEN_BITS)) | (offset << _LEN_BITS) | frame_len


def unpack(value: int) -> Location:
    return Location(value >> (_OFFSET_BITS + _LEN_BITS),
                    (value >> _LEN_BITS) & ((1 << _OFFSET_BITS) - 1),
                    value & ((1 << _LEN_BITS) - 1))


class ChunkIndex:
    def __init__(self) -> None:
        self._entries: dict[str, int] = {}
        self.bytes = 0
        self.garbage: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, chunk_id: str) -> bool:
        return chunk_id in self._entries

    def get(self, chunk_id: str) -> Location | None:
        value = self._entries.get(chunk_id)
        return None if value is None else unpack(value)

    def ids(self) -> list[str]:
        return list(self._entries)

    def items(self) -> Iterator[tuple[str, Location]]:
        for chunk_id, value in self._entries.items():
            yield chunk_id, unpack(value)

    def add_garbage(self, seq: int, amount: int) -> None:
        self.garbage[seq] = self.garbage.get(seq, 0) + amount

    def put(self, chunk_id: str, seq: int, offset: int, frame_len: int) -> bool:
        """Apply a put record; True if the id was not indexed before."""
        old = self._entries.get(chunk_id)
        self._entries[chunk_id] = pack(seq, offset, frame_len)
        self.bytes += frame_len
        if old is None:
            return True
        self._forget(unpack(old))
        return False

    def delete(self, chunk_id: str) -> bool:
        """Apply a tombstone; True if the id was indexed."""
        old = self._entries.pop(chunk_id, None)
        if old is None:
            return False
        self._forget(unpack(old))
        return True

    def _forget(self, old: Location) -> None:
        self.bytes -= old.frame_len
        self.add_garbage(old.seq, old.record_len)

    def relocate(self, chunk_id: str, old: Location, new_offset: int) -> bool:
        """Point ``chunk_id`` at ``new_offset`` of the same volume if it still
        is at ``old`` (compaction moved it); False if a later record won."""
        if self._entries.get(chunk_id) != pack(*old):
            return False
        self._entries[chunk_id] = pack(old.seq, new_offset, old.frame_len)
        return True

    def drop_volume(self, seq: int) -> list[str]:
        """Forget every entry in volume ``seq`` (its file is gone)."""
        lost = [cid for cid, value in self._entries.items() if unpack(value).seq == seq]
        for chunk_id in lost:
            self.bytes -= unpack(self._entries.pop(chunk_id)).frame_len
        self.garbage.pop(seq, None)
        return lost

    def copy_entries(self) -> dict[str, int]:
        """A consistent copy for a snapshot (one C-level dict copy on the loop)."""
        return dict(self._entries)

    @classmethod
    def restored(cls, entries: dict[str, int], garbage: dict[int, int]) -> ChunkIndex:
        index = cls()
        index._entries = entries
        index.garbage = dict(garbage)
        index.bytes = sum(value & ((1 << _LEN_BITS) - 1) for value in entries.values())
        return index


@dataclass(frozen=True, slots=True)
class SnapshotVolume:
    seq: int
    gen: int
    end: int
    garbage: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    volumes: list[SnapshotVolume]
    entries: dict[str, int]


def write_snapshot(directory: Path, volumes: list[SnapshotVolume],
                   entries: dict[str, int]) -> None:
    """Write a snapshot atomically (runs in a thread: serialising a large
    index takes a while, and the event loop keeps serving)."""
    parts = [_MAGIC, _COUNT.pack(len(volumes))]
    parts += [_VOLUME.pack(v.seq, v.gen, v.end, v.garbage) for v in volumes]
    parts.append(_ENTRIES.pack(len(entries)))
    parts += [bytes.fromhex(cid) + value.to_bytes(_LOC_LEN, "big")
              for cid, value in entries.items()]
    body = b"".join(parts)
    tmp = directory / (SNAPSHOT_NAME + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(body + zlib.crc32(body).to_bytes(4, "big"))
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, directory / SNAPSHOT_NAME)
    fsync_dir(directory)


def read_snapshot(directory: Path) -> Snapshot | None:
    """The snapshot in ``directory`` if there is one and it checks."""
    try:
        data = (directory / SNAPSHOT_NAME).read_bytes()
    except FileNotFoundError:
        return None
    if len(data) < len(_MAGIC) + _COUNT.size + _ENTRIES.size + 4:
        return None
    body, crc = data[:-4], int.from_bytes(data[-4:], "big")
    if body[: len(_MAGIC)] != _MAGIC or zlib.crc32(body) != crc:
        return None
    pos = len(_MAGIC)
    (nvol,) = _COUNT.unpack_from(body, pos)
    pos += _COUNT.size
    if pos + nvol * _VOLUME.size + _ENTRIES.size > len(body):
        return None
    volumes = [SnapshotVolume(*_VOLUME.unpack_from(body, pos + i * _VOLUME.size))
               for i in range(nvol)]
    pos += nvol * _VOLUME.size
    (count,) = _ENTRIES.unpack_from(body, pos)
    pos += _ENTRIES.size
    if pos + count * _ENTRY_LEN != len(body):
        return None
    view = memoryview(body)
    entries = {}
    for at in range(pos, len(body), _ENTRY_LEN):
        entries[view[at : at + _ID_LEN].hex()] = int.from_bytes(
            view[at + _ID_LEN : at + _ENTRY_LEN], "big")
    return Snapshot(volumes, entries)
