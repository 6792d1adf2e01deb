"""Chunk framing: content ids, optional LZ4 and verification on decode."""

from __future__ import annotations

import os
import struct

import blake3
import pytest

from echofs.core import chunk_codec
from echofs.core.chunk_codec import (
    FLAG_LZ4,
    HEADER_SIZE,
    MAGIC,
    chunk_digest,
    decode_chunk,
    encode_chunk,
    is_chunk_id,
    verify_frame,
)
from echofs.core.errors import CorruptChunk

MIB = 1024 * 1024

# Structured text: compresses well, yet every region of the LZ4 payload matters
# (unlike b"a" * n, where a damaged match offset can still decode to the same bytes).
TEXT = b"".join(b"line %06d of some fairly compressible text\n" % i for i in range(2000))


def _header(frame: bytes) -> tuple[bytes, int, int]:
    return struct.unpack_from(">4sBQ", frame)


def _with_raw_len(frame: bytes, raw_len: int) -> bytes:
    damaged = bytearray(frame)
    struct.pack_into(">Q", damaged, 5, raw_len)
    return bytes(damaged)


def _flip(frame: bytes, pos: int) -> bytes:
    damaged = bytearray(frame)
    damaged[pos] ^= 0xFF
    return bytes(damaged)


# -- round trips --------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"", b"x", b"hello world", bytes(range(256)), TEXT],
    ids=["empty", "one-byte", "small", "all-bytes", "text"],
)
def test_round_trip(raw: bytes) -> None:
    enc = encode_chunk(raw)
    assert enc.raw_size == len(raw)
    assert enc.stored_size == len(enc.frame)
    assert decode_chunk(enc.frame, enc.chunk_id) == raw


def test_empty_chunk_is_header_only_and_uncompressed() -> None:
    enc = encode_chunk(b"")
    assert not enc.compressed
    assert enc.frame == MAGIC + b"\x00" + (0).to_bytes(8, "big")
    assert len(enc.frame) == HEADER_SIZE
    assert decode_chunk(enc.frame, enc.chunk_id) == b""


def test_compressible_data_is_compressed_and_smaller() -> None:
    raw = b"a" * MIB
    enc = encode_chunk(raw)
    assert enc.compressed
    assert enc.stored_size < len(raw) // 10
    magic, flags, raw_len = _header(enc.frame)
    assert magic == MAGIC
    assert flags & FLAG_LZ4
    assert raw_len == len(raw)
    assert decode_chunk(enc.frame, enc.chunk_id) == raw


def test_random_data_is_not_compressed() -> None:
    raw = os.urandom(256 * 1024)
    enc = encode_chunk(raw)
    assert not enc.compressed
    _, flags, raw_len = _header(enc.frame)
    assert flags & FLAG_LZ4 == 0
    assert raw_len == len(raw)
    assert enc.frame[HEADER_SIZE:] == raw
    assert enc.stored_size == HEADER_SIZE + len(raw)
    assert decode_chunk(enc.frame, enc.chunk_id) == raw


# -- ids ------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"abc", b"a" * MIB, os.urandom(4096)])
def test_chunk_id_is_blake3_hex_of_raw(raw: bytes) -> None:
    expected = blake3.blake3(raw).hexdigest()
    assert chunk_digest(raw) == expected
    assert encode_chunk(raw).chunk_id == expected
    assert len(expected) == 64


def test_same_bytes_same_id_different_bytes_different_id() -> None:
    assert encode_chunk(b"abc").chunk_id == encode_chunk(b"abc").chunk_id
    assert encode_chunk(b"abc").chunk_id != encode_chunk(b"abd").chunk_id


def test_is_chunk_id() -> None:
    assert is_chunk_id(chunk_digest(b"anything"))
    assert is_chunk_id("0" * 64)
    assert is_chunk_id("0123456789abcdef" * 4)
    assert not is_chunk_id("")
    assert not is_chunk_id("a" * 63)
    assert not is_chunk_id("a" * 65)
    assert not is_chunk_id("A" * 64)  # upper case is not the canonical form
    assert not is_chunk_id("g" * 64)
    assert not is_chunk_id("../" + "a" * 61)
    assert not is_chunk_id(" " + "a" * 63)


# -- damage ----------------------------------------------------------------------


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_flipped_byte_in_uncompressed_payload(where: str) -> None:
    enc = encode_chunk(os.urandom(8192))
    assert not enc.compressed
    pos = {"first": HEADER_SIZE, "middle": len(enc.frame) // 2, "last": len(enc.frame) - 1}
    with pytest.raises(CorruptChunk):
        decode_chunk(_flip(enc.frame, pos[where]), enc.chunk_id)


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_flipped_byte_in_compressed_payload(where: str) -> None:
    enc = encode_chunk(TEXT)
    assert enc.compressed
    pos = {"first": HEADER_SIZE, "middle": len(enc.frame) // 2, "last": len(enc.frame) - 1}
    with pytest.raises(CorruptChunk):
        decode_chunk(_flip(enc.frame, pos[where]), enc.chunk_id)


def test_every_single_byte_flip_in_compressed_payload_is_detected() -> None:
    enc = encode_chunk(TEXT[:4000])
    assert enc.compressed
    for pos in range(HEADER_SIZE, len(enc.frame)):
        with pytest.raises(CorruptChunk):
            decode_chunk(_flip(enc.frame, pos), enc.chunk_id)


@pytest.mark.parametrize("raw", [TEXT, os.urandom(4096)], ids=["compressed", "uncompressed"])
@pytest.mark.parametrize("keep", [0, 1, HEADER_SIZE - 1, HEADER_SIZE, "minus-one"])
def test_truncated_frame(raw: bytes, keep: int | str) -> None:
    enc = encode_chunk(raw)
    cut = len(enc.frame) - 1 if keep == "minus-one" else keep
    with pytest.raises(CorruptChunk):
        decode_chunk(enc.frame[:cut], enc.chunk_id)


def test_truncated_empty_chunk_header() -> None:
    enc = encode_chunk(b"")
    with pytest.raises(CorruptChunk):
        decode_chunk(enc.frame[:-1], enc.chunk_id)


@pytest.mark.parametrize("magic", [b"ECF0", b"XXXX", b"\x00\x00\x00\x00", b"ecf1"])
def test_bad_magic(magic: bytes) -> None:
    enc = encode_chunk(b"some bytes")
    with pytest.raises(CorruptChunk):
        decode_chunk(magic + enc.frame[4:], enc.chunk_id)


@pytest.mark.parametrize("raw", [b"", TEXT, os.urandom(4096)])
def test_wrong_expected_id(raw: bytes) -> None:
    enc = encode_chunk(raw)
    other = chunk_digest(raw + b"!")
    with pytest.raises(CorruptChunk):
        decode_chunk(enc.frame, other)
    with pytest.raises(CorruptChunk):
        decode_chunk(enc.frame, "0" * 64)


def test_frame_of_other_chunk_is_refused() -> None:
    a, b = encode_chunk(b"chunk a"), encode_chunk(b"chunk b")
    with pytest.raises(CorruptChunk):
        decode_chunk(b.frame, a.chunk_id)


@pytest.mark.parametrize("raw", [TEXT, os.urandom(4096)], ids=["compressed", "uncompressed"])
@pytest.mark.parametrize("delta", [-1, +1, +1000])
def test_wrong_raw_len_in_header(raw: bytes, delta: int) -> None:
    enc = encode_chunk(raw)
    with pytest.raises(CorruptChunk):
        decode_chunk(_with_raw_len(enc.frame, len(raw) + delta), enc.chunk_id)


def test_wrong_raw_len_zero_in_header() -> None:
    enc = encode_chunk(os.urandom(100))
    with pytest.raises(CorruptChunk):
        decode_chunk(_with_raw_len(enc.frame, 0), enc.chunk_id)


def test_huge_raw_len_in_uncompressed_header() -> None:
    enc = encode_chunk(os.urandom(100))
    assert not enc.compressed
    with pytest.raises(CorruptChunk):
        decode_chunk(_with_raw_len(enc.frame, 2**63), enc.chunk_id)


# A damaged header must not make decode allocate or overflow: CorruptChunk.
@pytest.mark.parametrize("raw_len", [2**31, 2**40, 2**63])
def test_huge_raw_len_in_compressed_header(raw_len: int) -> None:
    enc = encode_chunk(TEXT)
    assert enc.compressed
    with pytest.raises(CorruptChunk):
        decode_chunk(_with_raw_len(enc.frame, raw_len), enc.chunk_id)


def test_compression_flag_cleared_on_compressed_frame() -> None:
    enc = encode_chunk(TEXT)
    assert enc.compressed
    damaged = bytearray(enc.frame)
    damaged[4] = 0
    with pytest.raises(CorruptChunk):
        decode_chunk(bytes(damaged), enc.chunk_id)


def test_compression_flag_set_on_uncompressed_frame() -> None:
    enc = encode_chunk(os.urandom(4096))
    assert not enc.compressed
    damaged = bytearray(enc.frame)
    damaged[4] = FLAG_LZ4
    with pytest.raises(CorruptChunk):
        decode_chunk(bytes(damaged), enc.chunk_id)


def test_corrupt_chunk_names_the_chunk() -> None:
    enc = encode_chunk(b"payload")
    with pytest.raises(CorruptChunk) as info:
        decode_chunk(_flip(enc.frame, len(enc.frame) - 1), enc.chunk_id)
    assert enc.chunk_id in str(info.value)
    assert info.value.code == "corrupt_chunk"


# -- verify_frame: decode's verdicts, without handing the bytes back ------------


@pytest.mark.parametrize("raw", [b"", b"x", TEXT, os.urandom(4096), os.urandom(MIB)],
                         ids=["empty", "one-byte", "text", "random", "random-mib"])
def test_verify_frame_accepts_an_intact_frame(raw: bytes) -> None:
    enc = encode_chunk(raw)
    assert verify_frame(enc.frame, enc.chunk_id) is None


def _damaged(frame: bytes, how: str) -> bytes:
    if how == "flipped":
        return _flip(frame, len(frame) - 1)
    if how == "truncated":
        return frame[:-1]
    if how == "magic":
        return b"XXXX" + frame[4:]
    if how == "length":
        return _with_raw_len(frame, _header(frame)[2] + 1)
    assert how == "flag"
    damaged = bytearray(frame)
    damaged[4] ^= FLAG_LZ4
    return bytes(damaged)


@pytest.mark.parametrize("raw", [TEXT, os.urandom(4096)], ids=["compressed", "uncompressed"])
@pytest.mark.parametrize("how", ["flipped", "truncated", "magic", "length", "flag"])
def test_verify_frame_refuses_what_decode_refuses(raw: bytes, how: str) -> None:
    enc = encode_chunk(raw)
    damaged = _damaged(enc.frame, how)
    with pytest.raises(CorruptChunk):
        decode_chunk(damaged, enc.chunk_id)
    with pytest.raises(CorruptChunk):
        verify_frame(damaged, enc.chunk_id)


def test_verify_frame_refuses_another_chunks_frame() -> None:
    a, b = encode_chunk(os.urandom(MIB)), encode_chunk(os.urandom(MIB))
    with pytest.raises(CorruptChunk):
        verify_frame(b.frame, a.chunk_id)


# -- the compressibility sample ---------------------------------------------------


def test_large_compressible_chunk_is_compressed() -> None:
    raw = (TEXT * (MIB // len(TEXT) + 1))[:MIB]
    enc = encode_chunk(raw)
    assert enc.compressed and enc.stored_size < MIB // 4
    assert decode_chunk(enc.frame, enc.chunk_id) == raw


def test_chunk_compressible_only_where_the_sample_misses_is_stored_raw() -> None:
    # The documented trade-off: the sample decides. Random bytes exactly where
    # it looks, zeros everywhere else: stored uncompressed, and still intact.
    size = MIB
    raw = bytearray(size)
    span = chunk_codec._SAMPLE_SLICE
    step = (size - span) // (chunk_codec._SAMPLE_SLICES - 1)
    for i in range(chunk_codec._SAMPLE_SLICES):
        raw[i * step : i * step + span] = os.urandom(span)
    enc = encode_chunk(bytes(raw))
    assert not enc.compressed
    assert decode_chunk(enc.frame, enc.chunk_id) == raw
