"""A frame is checked once per process by identity, and never trusted
for a different object, a different chunk id or after a failed check."""

from __future__ import annotations

import asyncio
import os

import pytest

from echofs.core import chunk_codec
from echofs.core.chunk_codec import encode_chunk
from echofs.core.errors import CorruptChunk
from echofs.worker import verified_frames
from echofs.worker.verified_frames import VerifiedFrames


@pytest.fixture
def counted(monkeypatch):
    """How many times frames were really hashed."""
    calls: list[str] = []
    real = chunk_codec.verify_frame

    def counting(frame: bytes, chunk_id: str) -> None:
        calls.append(chunk_id)
        real(frame, chunk_id)

    monkeypatch.setattr(verified_frames, "verify_frame", counting)
    return calls


async def test_the_same_frame_object_is_hashed_once(counted):
    table = VerifiedFrames()
    chunk = encode_chunk(os.urandom(4096))
    for _ in range(3):
        await table.verify(chunk.frame, chunk.chunk_id)
    assert len(counted) == 1


async def test_concurrent_checks_of_one_large_frame_share_one(counted):
    table = VerifiedFrames()
    chunk = encode_chunk(os.urandom(1024 * 1024))
    await asyncio.gather(*(table.verify(chunk.frame, chunk.chunk_id) for _ in range(3)))
    assert len(counted) == 1


async def test_an_equal_copy_is_a_new_object_and_is_checked(counted):
    table = VerifiedFrames()
    chunk = encode_chunk(os.urandom(4096))
    await table.verify(chunk.frame, chunk.chunk_id)
    await table.verify(bytes(bytearray(chunk.frame)), chunk.chunk_id)
    assert len(counted) == 2


async def test_a_damaged_copy_of_a_checked_frame_is_refused(counted):
    table = VerifiedFrames()
    chunk = encode_chunk(os.urandom(4096))
    await table.verify(chunk.frame, chunk.chunk_id)
    damaged = chunk.frame[:-1] + bytes([chunk.frame[-1] ^ 1])
    with pytest.raises(CorruptChunk):
        await table.verify(damaged, chunk.chunk_id)


async def test_a_checked_frame_under_another_id_is_checked_and_refused(counted):
    table = VerifiedFrames()
    chunk = encode_chunk(os.urandom(4096))
    other = encode_chunk(os.urandom(4096))
    await table.verify(chunk.frame, chunk.chunk_id)
    with pytest.raises(CorruptChunk):
        await table.verify(chunk.frame, other.chunk_id)


async def test_a_failed_check_is_not_remembered_and_its_waiters_fail_too(counted):
    table = VerifiedFrames()
    chunk = encode_chunk(os.urandom(1024 * 1024))
    damaged = chunk.frame[:-1] + bytes([chunk.frame[-1] ^ 1])
    results = await asyncio.gather(*(table.verify(damaged, chunk.chunk_id) for _ in range(3)),
                                   return_exceptions=True)
    assert all(isinstance(r, CorruptChunk) for r in results)
    assert len(table) == 0
    with pytest.raises(CorruptChunk):
        await table.verify(damaged, chunk.chunk_id)


async def test_mutable_buffers_are_always_checked(counted):
    table = VerifiedFrames()
    chunk = encode_chunk(os.urandom(4096))
    buffer = bytearray(chunk.frame)
    await table.verify(buffer, chunk.chunk_id)  # type: ignore[arg-type]
    buffer[-1] ^= 1
    with pytest.raises(CorruptChunk):
        await table.verify(buffer, chunk.chunk_id)  # type: ignore[arg-type]


async def test_the_budget_bounds_what_is_held(counted):
    table = VerifiedFrames(budget_bytes=3 * 5000)
    chunks = [encode_chunk(os.urandom(4096)) for _ in range(10)]
    for chunk in chunks:
        await table.verify(chunk.frame, chunk.chunk_id)
    assert len(table) == 3
    await table.verify(chunks[0].frame, chunks[0].chunk_id)  # dropped: checked again
    assert len(counted) == 11


async def test_a_cancelled_check_leaves_its_waiters_to_check_for_themselves(monkeypatch):
    table = VerifiedFrames()
    chunk = encode_chunk(os.urandom(1024 * 1024))
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(frame: bytes, chunk_id: str) -> None:
        started.set()
        await release.wait()
        chunk_codec.verify_frame(frame, chunk_id)

    monkeypatch.setattr(verified_frames, "_check", slow)
    first = asyncio.create_task(table.verify(chunk.frame, chunk.chunk_id))
    await started.wait()
    second = asyncio.create_task(table.verify(chunk.frame, chunk.chunk_id))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    await second  # checked the frame itself rather than failing with the first
    with pytest.raises(asyncio.CancelledError):
        await first
