"""ChunkIO: which answers of a worker count against it."""

from __future__ import annotations

import pytest

from echofs.core.chunk_codec import encode_chunk
from echofs.core.errors import ChunkMissing, CorruptChunk, InsufficientStorage
from echofs.core.space import SpaceReserve, SpaceState
from echofs.core.vocabulary import Liveness
from echofs.master.chunk_io import ChunkIO
from echofs.master.membership import WorkerRegistry
from echofs.testing.disk import flip_stored_byte
from echofs.worker.client import LocalWorkerClient
from echofs.worker.service import WorkerService
from echofs.worker.stores.volume import VolumeChunkStore


async def test_missing_or_corrupt_copies_do_not_make_a_worker_suspect(tmp_path):
    service = WorkerService("w1", VolumeChunkStore(tmp_path / "w1"))
    await service.open()
    try:
        registry = WorkerRegistry(suspect_after=3, dead_after=10)
        registry.register(LocalWorkerClient(service))
        chunk_io = ChunkIO(registry, write_timeout=5, read_timeout=5)
        enc = encode_chunk(b"a chunk the disk damages" * 40)
        await chunk_io.put("w1", enc.chunk_id, enc.frame)
        flip_stored_byte(tmp_path / "w1", enc.chunk_id, offset=30)
        absent = encode_chunk(b"never stored")
        # More answers in a row than the failed calls that make a worker suspect.
        for chunk_id, answer in ((enc.chunk_id, CorruptChunk), (absent.chunk_id, ChunkMissing)):
            for _ in range(5):
                with pytest.raises(answer):
                    await chunk_io.get("w1", chunk_id)
            assert registry.liveness("w1") is Liveness.ALIVE
    finally:
        await service.close()


async def test_a_worker_refusing_puts_for_space_stays_alive(tmp_path):
    # A reserve larger than any disk: every put is refused, as on a full one.
    store = VolumeChunkStore(tmp_path / "w1", reserve=SpaceReserve(percent=99.9))
    service = WorkerService("w1", store)
    await service.open()
    try:
        registry = WorkerRegistry(suspect_after=3, dead_after=10)
        registry.register(LocalWorkerClient(service))
        registry.heartbeat("w1", await service.status())
        chunk_io = ChunkIO(registry, write_timeout=5, read_timeout=5)
        for n in range(5):
            enc = encode_chunk(f"no room for chunk {n}".encode())
            with pytest.raises(InsufficientStorage):
                await chunk_io.put("w1", enc.chunk_id, enc.frame)
        assert registry.liveness("w1") is Liveness.ALIVE
        assert registry.space("w1") is SpaceState.FULL
        assert registry.full_ids() == ["w1"]
        assert registry.snapshot()[0]["space"] == "full"
    finally:
        await service.close()
