"""The record format: encode, parse, read back, scan (torn tails, damage)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from echofs.core.chunk_codec import encode_chunk
from echofs.core.errors import CorruptChunk
from echofs.worker.stores.volume.records import (
    HEADER_SIZE,
    MAX_FRAME_LEN,
    Kind,
    encode_header,
    parse_header,
    read_frame,
    scan,
)


def _record(kind: Kind, frame: bytes, chunk_id: bytes | None = None) -> tuple[bytes, bytes]:
    chunk_id = chunk_id or os.urandom(32)
    return chunk_id, encode_header(kind, chunk_id, frame) + frame


def _volume(tmp_path: Path, records: list[bytes]) -> tuple[int, int]:
    path = tmp_path / "v.vol"
    path.write_bytes(b"".join(records))
    return os.open(path, os.O_RDWR), path.stat().st_size


def test_header_round_trip() -> None:
    frame = encode_chunk(b"some bytes" * 100).frame
    chunk_id = os.urandom(32)
    header = parse_header(encode_header(Kind.PUT, chunk_id, frame))
    assert header is not None
    assert (header.kind, header.chunk_id, header.frame_len) == (Kind.PUT, chunk_id, len(frame))
    assert header.record_len == HEADER_SIZE + len(frame)
    tomb = parse_header(encode_header(Kind.TOMBSTONE, chunk_id, b""))
    assert tomb is not None and tomb.kind is Kind.TOMBSTONE and tomb.frame_len == 0


@pytest.mark.parametrize("at", [0, 3, 4, 5, 20, 36, 37, 41, 45, 48])
def test_any_flipped_header_byte_is_refused(at: int) -> None:
    raw = bytearray(encode_header(Kind.PUT, os.urandom(32), b"frame"))
    raw[at] ^= 0x01
    assert parse_header(bytes(raw)) is None


def test_short_or_implausible_headers_are_refused() -> None:
    good = encode_header(Kind.PUT, os.urandom(32), b"x")
    assert parse_header(good[:-1]) is None
    # A checksummed header may still claim what cannot be: a tombstone with a
    # frame, an unknown kind, a frame above the largest possible.
    import struct
    import zlib

    def forged(kind: int, length: int) -> bytes:
        head = struct.pack(">4sB32sIII", b"EVR1", kind, bytes(32), length, 0, 0)[:45]
        return head + zlib.crc32(head).to_bytes(4, "big")

    assert parse_header(forged(2, 10)) is None
    assert parse_header(forged(9, 0)) is None
    assert parse_header(forged(1, MAX_FRAME_LEN + 1)) is None
    assert parse_header(forged(1, 10)) is not None


@pytest.mark.parametrize("one_read", [True, False])
def test_read_frame_returns_the_frame_and_catches_damage(tmp_path: Path, one_read: bool) -> None:
    frame = encode_chunk(os.urandom(3000)).frame
    chunk_id, record = _record(Kind.PUT, frame)
    fd, _ = _volume(tmp_path, [record])
    try:
        assert read_frame(fd, 0, len(frame), chunk_id, one_read=one_read) == frame
        with pytest.raises(CorruptChunk):  # the index and the header disagree
            read_frame(fd, 0, len(frame), os.urandom(32), one_read=one_read)
        os.pwrite(fd, b"\x00", HEADER_SIZE + 100)  # bit rot in the frame
        with pytest.raises(CorruptChunk, match="checksum"):
            read_frame(fd, 0, len(frame), chunk_id, one_read=one_read)
        os.pwrite(fd, b"\x00", 10)  # and in the header
        with pytest.raises(CorruptChunk, match="header"):
            read_frame(fd, 0, len(frame), chunk_id, one_read=one_read)
    finally:
        os.close(fd)


def test_scan_reads_every_record(tmp_path: Path) -> None:
    frames = [os.urandom(n) for n in (10, 70_000, 0, 5)]
    records = [_record(Kind.PUT, f)[1] for f in frames] + [_record(Kind.TOMBSTONE, b"")[1]]
    fd, size = _volume(tmp_path, records)
    try:
        found = scan(fd, size, check_tail=True)
    finally:
        os.close(fd)
    assert [r.header.frame_len for r in found.records] == [10, 70_000, 0, 5, 0]
    assert found.records[-1].header.kind is Kind.TOMBSTONE
    assert found.end == size and found.damaged == 0
    # offsets are record starts
    assert [r.offset for r in found.records][:2] == [0, HEADER_SIZE + 10]


def test_scan_from_the_middle(tmp_path: Path) -> None:
    records = [_record(Kind.PUT, os.urandom(100))[1] for _ in range(4)]
    fd, size = _volume(tmp_path, records)
    try:
        found = scan(fd, size, 2 * len(records[0]), check_tail=True)
    finally:
        os.close(fd)
    assert [r.offset for r in found.records] == [2 * len(records[0]), 3 * len(records[0])]


def test_torn_tail_past_eof_is_cut(tmp_path: Path) -> None:
    records = [_record(Kind.PUT, os.urandom(1000))[1] for _ in range(3)]
    whole = len(records[0]) * 2
    for cut in (1, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 1, len(records[2]) - 1):
        fd, _ = _volume(tmp_path, records)
        try:
            os.ftruncate(fd, whole + cut)
            found = scan(fd, whole + cut, check_tail=True)
        finally:
            os.close(fd)
        assert len(found.records) == 2 and found.end == whole, cut


def test_last_record_with_bad_frame_is_torn_only_where_appended(tmp_path: Path) -> None:
    records = [_record(Kind.PUT, os.urandom(1000))[1] for _ in range(3)]
    fd, size = _volume(tmp_path, records)
    try:
        os.pwrite(fd, b"\xff" * 8, size - 8)  # the last frame never fully landed
        appended = scan(fd, size, check_tail=True)
        sealed = scan(fd, size, check_tail=False)
    finally:
        os.close(fd)
    assert len(appended.records) == 2 and appended.end == 2 * len(records[0])
    # In a sealed volume it is rot in a complete record: kept, read as corrupt.
    assert len(sealed.records) == 3 and sealed.end == size


def test_damaged_header_mid_volume_resyncs_to_the_next_record(tmp_path: Path) -> None:
    records = [_record(Kind.PUT, os.urandom(500))[1] for _ in range(5)]
    fd, size = _volume(tmp_path, records)
    step = len(records[0])
    try:
        os.pwrite(fd, b"\x00", step + 2)  # the second record's magic
        found = scan(fd, size, check_tail=True)
    finally:
        os.close(fd)
    assert [r.offset for r in found.records] == [0, 2 * step, 3 * step, 4 * step]
    assert found.damaged == step and found.end == size


def test_damage_with_nothing_valid_after_it_is_a_torn_tail(tmp_path: Path) -> None:
    records = [_record(Kind.PUT, os.urandom(500))[1] for _ in range(3)]
    fd, size = _volume(tmp_path, [*records, b"\x00" * 300])
    try:
        os.pwrite(fd, b"\x00", 2 * len(records[0]) + 1)  # last header damaged too
        found = scan(fd, size, check_tail=True)
    finally:
        os.close(fd)
    assert len(found.records) == 2 and found.end == 2 * len(records[0])
