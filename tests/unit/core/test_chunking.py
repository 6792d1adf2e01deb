"""ChunkSplitter: fixed-size chunks from pieces of any size."""

from __future__ import annotations

import os
import random

import pytest

from echofs.core.chunking import (
    MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    ChunkSplitter,
    validate_chunk_size,
)

CHUNK = MIN_CHUNK_SIZE  # 4 KiB keeps the tests fast


def _split(data: bytes, piece_sizes: list[int], chunk_size: int = CHUNK) -> list[bytes]:
    """Feed ``data`` cut into pieces cycling through ``piece_sizes``."""
    splitter = ChunkSplitter(chunk_size)
    chunks: list[bytes] = []
    pos, i = 0, 0
    while pos < len(data):
        size = piece_sizes[i % len(piece_sizes)]
        i += 1
        chunks.extend(splitter.feed(data[pos : pos + size]))
        pos += size
    tail = splitter.finish()
    if tail is not None:
        chunks.append(tail)
    assert splitter.total == len(data)
    return chunks


def _check(data: bytes, chunks: list[bytes], chunk_size: int = CHUNK) -> None:
    assert b"".join(chunks) == data
    assert all(len(c) == chunk_size for c in chunks[:-1])
    if chunks:
        assert 0 < len(chunks[-1]) <= chunk_size
    assert len(chunks) == -(-len(data) // chunk_size)  # ceil division


PIECE_SIZES = [
    [1],
    [7],
    [CHUNK - 1],
    [CHUNK],
    [CHUNK + 1],
    [3 * CHUNK + 5],
    [10 * CHUNK],
    [1, CHUNK, 2, 5000, 17],
    [0, 100, 0, 4095],  # empty pieces are allowed
]
DATA_LENGTHS = [1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 123]


@pytest.mark.parametrize("pieces", PIECE_SIZES, ids=lambda p: "-".join(map(str, p)))
@pytest.mark.parametrize("length", DATA_LENGTHS)
def test_split_piece_sizes(pieces: list[int], length: int) -> None:
    data = os.urandom(length)
    _check(data, _split(data, pieces))


@pytest.mark.parametrize("seed", range(25))
def test_split_random_piece_sizes(seed: int) -> None:
    rng = random.Random(seed)
    chunk_size = rng.choice([CHUNK, CHUNK + 1, 3 * CHUNK + 7, 16 * 1024])
    data = rng.randbytes(rng.randrange(0, 12 * chunk_size))
    pieces = [rng.choice([0, 1, rng.randrange(1, 3 * chunk_size)]) for _ in range(50)]
    if not any(pieces):
        pieces.append(1)
    _check(data, _split(data, pieces, chunk_size), chunk_size)


def test_feed_returns_completed_chunks_immediately() -> None:
    splitter = ChunkSplitter(CHUNK)
    assert splitter.feed(b"x" * (CHUNK - 1)) == []
    assert splitter.feed(b"y") == [b"x" * (CHUNK - 1) + b"y"]
    out = splitter.feed(b"z" * (2 * CHUNK + 3))
    assert out == [b"z" * CHUNK, b"z" * CHUNK]
    assert splitter.finish() == b"zzz"
    assert splitter.finish() is None  # finish empties the buffer


def test_feed_accepts_bytearray_and_memoryview() -> None:
    data = os.urandom(2 * CHUNK + 10)
    splitter = ChunkSplitter(CHUNK)
    chunks = splitter.feed(bytearray(data[: CHUNK + 5]))
    chunks += splitter.feed(memoryview(data)[CHUNK + 5 :])
    tail = splitter.finish()
    assert all(isinstance(c, bytes) for c in chunks)
    assert b"".join(chunks) + tail == data


def test_chunks_do_not_alias_caller_buffer() -> None:
    buf = bytearray(b"q" * CHUNK)
    splitter = ChunkSplitter(CHUNK)
    [chunk] = splitter.feed(buf)
    buf[:] = b"w" * CHUNK
    assert chunk == b"q" * CHUNK


def test_zero_bytes_gives_no_chunk() -> None:
    splitter = ChunkSplitter(CHUNK)
    assert splitter.finish() is None
    assert splitter.total == 0


def test_only_empty_feeds_gives_no_chunk() -> None:
    splitter = ChunkSplitter(CHUNK)
    assert splitter.feed(b"") == []
    assert splitter.feed(b"") == []
    assert splitter.finish() is None


@pytest.mark.parametrize("multiple", [1, 2, 7])
def test_exact_multiple_has_no_tail(multiple: int) -> None:
    data = os.urandom(multiple * CHUNK)
    splitter = ChunkSplitter(CHUNK)
    chunks = splitter.feed(data[:100]) + splitter.feed(data[100:])
    assert len(chunks) == multiple
    assert b"".join(chunks) == data
    assert splitter.finish() is None


def test_buffer_never_holds_a_full_chunk() -> None:
    splitter = ChunkSplitter(CHUNK)
    fed = 0
    for size in (1, CHUNK - 1, CHUNK, 5 * CHUNK + 3, 17):
        splitter.feed(b"\x00" * size)
        fed += size
        assert splitter.buffered == fed % CHUNK < CHUNK


def test_chunks_do_not_alias_a_reused_memoryview() -> None:
    buf = bytearray(b"q" * (CHUNK + 10))
    splitter = ChunkSplitter(CHUNK)
    [chunk] = splitter.feed(memoryview(buf))
    buf[:] = b"w" * len(buf)
    assert chunk == b"q" * CHUNK
    assert splitter.finish() == b"q" * 10


def test_a_piece_that_is_exactly_a_chunk_is_not_copied() -> None:
    piece = os.urandom(CHUNK)
    splitter = ChunkSplitter(CHUNK)
    [chunk] = splitter.feed(piece)
    assert chunk is piece


@pytest.mark.parametrize("size", [MIN_CHUNK_SIZE, MIN_CHUNK_SIZE + 1, 1024 * 1024, MAX_CHUNK_SIZE])
def test_validate_chunk_size_accepts_bounds(size: int) -> None:
    assert validate_chunk_size(size) == size
    assert ChunkSplitter(size).chunk_size == size


@pytest.mark.parametrize(
    "size", [-1, 0, 1, MIN_CHUNK_SIZE - 1, MAX_CHUNK_SIZE + 1, 2 * MAX_CHUNK_SIZE]
)
def test_validate_chunk_size_rejects_out_of_bounds(size: int) -> None:
    with pytest.raises(ValueError):
        validate_chunk_size(size)
    with pytest.raises(ValueError):
        ChunkSplitter(size)


def test_bounds_values() -> None:
    assert MIN_CHUNK_SIZE == 4 * 1024
    assert MAX_CHUNK_SIZE == 64 * 1024 * 1024
