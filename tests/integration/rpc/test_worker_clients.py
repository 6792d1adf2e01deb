"""The WorkerClient contract, held by the in-process client and the gRPC one
alike: the master cannot tell them apart."""

from __future__ import annotations

import asyncio
import os

import pytest

from echofs.core.chunk_codec import encode_chunk
from echofs.core.errors import ChunkMissing, CorruptChunk
from echofs.rpc.worker_client import GrpcWorkerClient
from echofs.rpc.worker_server import PART_SIZE, WorkerGrpcService
from echofs.rpc.worker_transport import ChunkServer
from echofs.testing.process import free_port
from echofs.worker.client import LocalWorkerClient
from echofs.worker.service import WorkerService
from echofs.worker.stores.local import LocalChunkStore


@pytest.fixture(params=["local", "grpc"])
async def client(request, tmp_path):
    service = WorkerService("w1", LocalChunkStore(tmp_path / "store"))
    await service.open()
    if request.param == "local":
        yield LocalWorkerClient(service)
        return
    server = ChunkServer([WorkerGrpcService(service)])
    port = free_port()
    await server.start("127.0.0.1", port)
    remote = GrpcWorkerClient("w1", f"127.0.0.1:{port}")
    try:
        yield remote
    finally:
        await remote.close()
        server.close()
        await server.wait_closed()


async def test_put_get_has_verify_delete(client):
    chunk = encode_chunk(os.urandom(1000))
    assert not await client.has_chunk(chunk.chunk_id)
    await client.put_chunk(chunk.chunk_id, chunk.frame)
    assert await client.has_chunk(chunk.chunk_id)
    assert await client.get_chunk(chunk.chunk_id) == chunk.frame
    assert await client.verify_chunk(chunk.chunk_id) == "ok"
    assert [c async for c in client.list_chunks()] == [chunk.chunk_id]
    status = await client.status()
    assert status.worker_id == "w1" and status.usage.chunk_count == 1
    assert await client.delete_chunk(chunk.chunk_id) is True
    assert await client.delete_chunk(chunk.chunk_id) is False
    assert await client.verify_chunk(chunk.chunk_id) == "missing"


async def test_missing_chunk_is_chunk_missing(client):
    with pytest.raises(ChunkMissing):
        await client.get_chunk("ab" * 32)


async def test_damaged_frame_is_refused_and_not_stored(client):
    chunk = encode_chunk(os.urandom(1000))
    damaged = chunk.frame[:-1] + bytes([chunk.frame[-1] ^ 1])
    with pytest.raises(CorruptChunk):
        await client.put_chunk(chunk.chunk_id, damaged)
    assert not await client.has_chunk(chunk.chunk_id)


async def test_large_chunk_streams_in_parts(client):
    chunk = encode_chunk(os.urandom(3 * PART_SIZE + 123))
    await client.put_chunk(chunk.chunk_id, chunk.frame)
    assert await client.get_chunk(chunk.chunk_id) == chunk.frame


async def test_many_chunks_listed_in_batches(client):
    ids = set()
    for i in range(1500):
        chunk = encode_chunk(f"chunk {i}".encode())
        await client.put_chunk(chunk.chunk_id, chunk.frame)
        ids.add(chunk.chunk_id)
    assert {c async for c in client.list_chunks()} == ids


async def test_concurrent_small_puts_succeed_or_fail_each_on_its_own(client):
    chunks = [encode_chunk(os.urandom(4096)) for _ in range(40)]
    bad = chunks[17]
    frames = {c.chunk_id: c.frame for c in chunks}
    frames[bad.chunk_id] = bad.frame[:-1] + bytes([bad.frame[-1] ^ 1])
    outcomes = await asyncio.gather(*(client.put_chunk(i, f) for i, f in frames.items()),
                                    return_exceptions=True)
    failed = {c.chunk_id for c, o in zip(chunks, outcomes, strict=True) if o is not None}
    assert failed == {bad.chunk_id}
    assert isinstance(outcomes[17], CorruptChunk)
    for chunk in chunks:
        if chunk is not bad:
            assert await client.get_chunk(chunk.chunk_id) == chunk.frame
    assert not await client.has_chunk(bad.chunk_id)


class _CountingService(WorkerGrpcService):
    def __init__(self, service: WorkerService, *, batches: bool = True) -> None:
        super().__init__(service)
        self.batches = batches
        self.calls: list[int] = []  # items per call; 1 for a unary put

    async def put_chunk(self, message):
        self.calls.append(1)
        return await super().put_chunk(message)

    async def put_chunks(self, message):
        self.calls.append(len(message.items))
        return await super().put_chunks(message)

    def __mapping__(self):  # type: ignore[no-untyped-def]
        # A worker from before PutChunks does not serve the method at all.
        mapping = super().__mapping__()
        if not self.batches:
            mapping = {p: h for p, h in mapping.items() if not p.endswith("/PutChunks")}
        return mapping


@pytest.mark.parametrize("batches", [True, False])
async def test_grpc_client_coalesces_small_puts(tmp_path, batches):
    service = WorkerService("w1", LocalChunkStore(tmp_path / "store"))
    await service.open()
    counting = _CountingService(service, batches=batches)
    server = ChunkServer([counting])
    port = free_port()
    await server.start("127.0.0.1", port)
    remote = GrpcWorkerClient("w1", f"127.0.0.1:{port}")
    try:
        small = [encode_chunk(os.urandom(4096)) for _ in range(100)]
        large = encode_chunk(os.urandom(200_000))
        await asyncio.gather(remote.put_chunk(large.chunk_id, large.frame),
                             *(remote.put_chunk(c.chunk_id, c.frame) for c in small))
        for chunk in [large, *small]:
            assert await remote.get_chunk(chunk.chunk_id) == chunk.frame
        if batches:
            # The large frame alone, the small ones in a few calls.
            assert sorted(counting.calls).count(1) <= 3
            assert sum(counting.calls) == 101 and len(counting.calls) <= 10
        else:
            # Refused once, then every put unary: all of them still stored.
            assert counting.calls == [1] * 101
    finally:
        await remote.close()
        server.close()
        await server.wait_closed()
        await service.close()
