"""The record: what a volume file is a sequence of, and how to read one back.

A volume holds records back to back, each a fixed 49-byte header and then
the frame it carries (big-endian)::

    magic "EVR1" | kind u8 | chunk id 32 raw bytes | frame length u32
    | frame crc32 u32 | header crc32 u32 (of the 45 bytes before it) | frame

``kind`` is 1 for a put and 2 for a tombstone (a delete; its frame is empty).
A header checks itself, so a reader can tell a real header from damage or
from bytes that merely start with the magic, and the frame crc tells a
damaged frame from an intact one without hashing it with BLAKE3.

Scanning (:func:`scan`) reads headers only and seeks past frames, so opening a
store costs a read per record, not a read of every byte. What a scan can meet:

- a header that does not check: the bytes from there are damaged. The scan
  searches forward for the next header that checks and goes on from there
  (one flipped bit in the middle of a volume loses one record, not the rest
  of the volume). With no valid record after it, it is a torn tail.
- a header whose frame runs past the end of the file: a write cut short by a
  crash (torn tail).
- an intact header whose frame fails its crc: kept (a read of it raises
  :class:`~echofs.core.errors.CorruptChunk`, so the scrubber reports the copy
  and the replicator repairs it), unless it is the last record of the volume
  being appended to, where it is a write cut short and belongs to the torn
  tail (``check_tail``).

The torn tail is reported as ``VolumeScan.end``: the caller truncates the file
there. Only the volume being appended to can have one; a record there was never
acknowledged, since a put returns only after its batch's fdatasync.

A frame of a volume written by a chunk store may itself be a volume (a user
stores a volume file): the forward search for a valid header may then land
inside a frame. What it finds there is a real record, with a frame whose
checksum holds and whose content matches its id, so indexing it is harmless;
the scan goes on from its end and finds its way back to the outer records.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

from echofs.core.chunk_codec import HEADER_SIZE as FRAME_HEADER_SIZE
from echofs.core.chunk_codec import MAX_RAW_SIZE
from echofs.core.errors import CorruptChunk

MAGIC = b"EVR1"
_HEADER = struct.Struct(">4sB32sIII")
HEADER_SIZE = _HEADER.size
_CHECKED = HEADER_SIZE - 4  # the bytes the header crc covers
# A frame is never larger than the largest raw chunk plus its own header (LZ4
# is only kept when it shrinks a chunk); a header claiming more is damaged.
MAX_FRAME_LEN = MAX_RAW_SIZE + FRAME_HEADER_SIZE
# Scans read this much at a time: several small records per read, and for
# large records only a small part of the frame after each header.
_SCAN_BLOCK = 64 * 1024
_SEARCH_BLOCK = 1024 * 1024


class Kind(IntEnum):
    PUT = 1
    TOMBSTONE = 2


@dataclass(frozen=True, slots=True)
class Header:
    kind: Kind
    chunk_id: bytes  # 32 raw bytes
    frame_len: int
    frame_crc: int

    @property
    def record_len(self) -> int:
        return HEADER_SIZE + self.frame_len


@dataclass(frozen=True, slots=True)
class ScannedRecord:
    offset: int
    header: Header

    @property
    def end(self) -> int:
        return self.offset + self.header.record_len


@dataclass(slots=True)
class VolumeScan:
    records: list[ScannedRecord]
    # Where the valid records end: the file is truncated here when it is the
    # volume being appended to.
    end: int
    # Bytes between valid records that belong to no record (damaged headers).
    damaged: int


def encode_header(kind: Kind, chunk_id: bytes, frame: bytes | memoryview) -> bytes:
    head = _HEADER.pack(MAGIC, kind, chunk_id, len(frame), zlib.crc32(frame), 0)
    return head[:_CHECKED] + zlib.crc32(head[:_CHECKED]).to_bytes(4, "big")


def parse_header(buf: bytes | memoryview) -> Header | None:
    """The header at the start of ``buf``, or None if these bytes are not one."""
    if len(buf) < HEADER_SIZE:
        return None
    magic, kind, chunk_id, frame_len, frame_crc, header_crc = _HEADER.unpack_from(buf)
    if magic != MAGIC or zlib.crc32(buf[:_CHECKED]) != header_crc:
        return None
    if kind == Kind.PUT:
        if frame_len > MAX_FRAME_LEN:
            return None
    elif kind != Kind.TOMBSTONE or frame_len:
        return None
    return Header(Kind(kind), bytes(chunk_id), frame_len, frame_crc)


def read_frame(fd: int, offset: int, frame_len: int, chunk_id: bytes,
               *, one_read: bool) -> bytes:
    """The frame of the put record at ``offset``, checked against its header.

    ``one_read`` reads header and frame with one pread (small records: one
    syscall, one short copy); otherwise the frame is read on its own so the
    returned bytes are the read's own buffer, never a copy.
    Raises :class:`CorruptChunk` if the record is damaged.
    """
    if one_read:
        buf = os.pread(fd, HEADER_SIZE + frame_len, offset)
        header = parse_header(buf)
        frame = buf[HEADER_SIZE:]
    else:
        header = parse_header(os.pread(fd, HEADER_SIZE, offset))
        frame = os.pread(fd, frame_len, offset + HEADER_SIZE) if header else b""
    if (header is None or header.kind != Kind.PUT or header.chunk_id != chunk_id
            or header.frame_len != frame_len):
        raise CorruptChunk(f"chunk {chunk_id.hex()}: record header damaged")
    if len(frame) != frame_len or zlib.crc32(frame) != header.frame_crc:
        raise CorruptChunk(f"chunk {chunk_id.hex()}: frame fails its checksum")
    return frame


def frame_intact(fd: int, record: ScannedRecord) -> bool:
    header = record.header
    frame = os.pread(fd, header.frame_len, record.offset + HEADER_SIZE)
    return len(frame) == header.frame_len and zlib.crc32(frame) == header.frame_crc


class _BlockReader:
    """Positional reads served from one cached block, so walking small
    records costs one syscall per block, not one per record."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self._start = 0
        self._block = b""

    def read(self, pos: int, n: int, block: int = _SCAN_BLOCK) -> bytes:
        rel = pos - self._start
        if rel < 0 or rel + n > len(self._block):
            self._start = pos
            self._block = os.pread(self.fd, max(n, block), pos)
            rel = 0
        return self._block[rel : rel + n]


def _next_header(reader: _BlockReader, pos: int) -> int | None:
    """The offset of the next header that checks at or after ``pos``."""
    while pos + HEADER_SIZE <= reader.size:
        window = reader.read(pos, min(_SEARCH_BLOCK, reader.size - pos), _SEARCH_BLOCK)
        at = window.find(MAGIC)
        while at != -1:
            candidate = pos + at
            if parse_header(reader.read(candidate, HEADER_SIZE)) is not None:
                return candidate
            at = window.find(MAGIC, at + 1)
        # A magic may straddle the window's end: overlap by its length - 1.
        pos += max(1, len(window) - len(MAGIC) + 1)
    return None


def scan(fd: int, size: int, start: int = 0, *, check_tail: bool) -> VolumeScan:
    """Walk the records of a volume file of ``size`` bytes from ``start`` (a
    record boundary). ``check_tail``: this is the volume being appended to, so
    a damaged last record is a torn write, not rot (see the module docs)."""
    reader = _BlockReader(fd, size)
    records: list[ScannedRecord] = []
    damaged: list[tuple[int, int]] = []
    pos = start
    while pos < size:
        header = parse_header(reader.read(pos, HEADER_SIZE))
        if header is None:
            found = _next_header(reader, pos + 1)
            if found is None:
                break
            damaged.append((pos, found))
            pos = found
            continue
        if pos + header.record_len > size:
            break
        records.append(ScannedRecord(pos, header))
        pos += header.record_len
    end = pos
    while True:
        # Peel the tail: damage with nothing valid after it, and (in the
        # volume being appended to) a last record whose frame did not land.
        if damaged and damaged[-1][1] == end:
            end = damaged.pop()[0]
        elif (check_tail and records and records[-1].end == end
              and not frame_intact(fd, records[-1])):
            end = records.pop().offset
        else:
            break
    return VolumeScan(records, end, sum(b - a for a, b in damaged))


def iter_records(fd: int, size: int) -> Iterator[ScannedRecord]:
    """Every valid record of a volume file, in order (for tools and tests)."""
    yield from scan(fd, size, check_tail=False).records
