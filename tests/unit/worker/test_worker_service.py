"""WorkerService over a LocalChunkStore: verification before storage, status."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from echofs.core.chunk_codec import encode_chunk
from echofs.core.errors import ChunkMissing, CorruptChunk
from echofs.core.worker_status import WorkerStatus
from echofs.worker.service import WorkerService
from echofs.worker.stores.local import LocalChunkStore


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[WorkerService]:
    svc = WorkerService("w1", LocalChunkStore(tmp_path / "store"))
    await svc.open()
    try:
        yield svc
    finally:
        await svc.close()


async def _assert_empty(svc: WorkerService) -> None:
    assert [i async for i in svc.list_chunks()] == []
    status = await svc.status()
    assert (status.usage.chunk_count, status.usage.bytes_stored) == (0, 0)


async def test_put_get_round_trip(service: WorkerService) -> None:
    enc = encode_chunk(b"hello worker" * 100)
    await service.put_chunk(enc.chunk_id, enc.frame)
    assert await service.has_chunk(enc.chunk_id)
    assert await service.get_chunk(enc.chunk_id) == enc.frame
    assert [i async for i in service.list_chunks()] == [enc.chunk_id]
    assert await service.delete_chunk(enc.chunk_id) is True
    with pytest.raises(ChunkMissing):
        await service.get_chunk(enc.chunk_id)


async def test_put_refuses_frame_of_another_chunk(service: WorkerService) -> None:
    claimed = encode_chunk(b"what the id says")
    actual = encode_chunk(b"what the bytes are")
    with pytest.raises(CorruptChunk):
        await service.put_chunk(claimed.chunk_id, actual.frame)
    assert not await service.has_chunk(claimed.chunk_id)
    assert not await service.has_chunk(actual.chunk_id)
    await _assert_empty(service)


@pytest.mark.parametrize("raw", [b"x" * 100_000, os.urandom(4096)], ids=["lz4", "plain"])
async def test_put_refuses_frame_damaged_in_transit(service: WorkerService, raw: bytes) -> None:
    enc = encode_chunk(raw)
    damaged = bytearray(enc.frame)
    damaged[-1] ^= 0x01
    with pytest.raises(CorruptChunk):
        await service.put_chunk(enc.chunk_id, bytes(damaged))
    assert not await service.has_chunk(enc.chunk_id)
    await _assert_empty(service)
    assert (await service.status()).inflight == 0  # counter restored on failure


async def test_put_refuses_truncated_frame(service: WorkerService) -> None:
    enc = encode_chunk(os.urandom(1000))
    with pytest.raises(CorruptChunk):
        await service.put_chunk(enc.chunk_id, enc.frame[:-10])
    await _assert_empty(service)


async def test_status_reports_chunk_count(service: WorkerService, tmp_path: Path) -> None:
    status = await service.status()
    assert isinstance(status, WorkerStatus)
    assert status.worker_id == "w1"
    assert status.store == f"local:{tmp_path / 'store'}"
    assert status.inflight == 0
    assert status.started_at == service.started_at
    assert status.usage.chunk_count == 0

    chunks = [encode_chunk(f"chunk {i}".encode() * 50) for i in range(3)]
    for enc in chunks:
        await service.put_chunk(enc.chunk_id, enc.frame)
    status = await service.status()
    assert status.usage.chunk_count == 3
    assert status.usage.bytes_stored == sum(len(enc.frame) for enc in chunks)
    assert status.inflight == 0

    await service.delete_chunk(chunks[0].chunk_id)
    assert (await service.status()).usage.chunk_count == 2
