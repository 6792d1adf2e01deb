"""PutChunkChain over real gRPC sockets: three workers relay a frame to each
other with the cluster token, and a worker too old to know the call is
reported as such (the master then sends it the copy directly)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from grpclib.server import Server

from echofs.core.chunk_codec import encode_chunk
from echofs.core.errors import CorruptChunk
from echofs.rpc.chain_relay import PeerChannels
from echofs.rpc.cluster_auth import require_cluster_token
from echofs.rpc.worker_client import GrpcWorkerClient
from echofs.rpc.worker_server import WorkerGrpcService
from echofs.rpc.worker_transport import ChunkServer
from echofs.testing.process import free_port
from echofs.worker.client import ChainUnsupported, HopNotReached, HopOutcome
from echofs.worker.service import WorkerService
from echofs.worker.stores.local import LocalChunkStore

TOKEN = "chain-test-token"
MIB = 1024 * 1024


class _OldWorkerGrpcService(WorkerGrpcService):
    """A worker from before the write pipeline: it does not serve PutChunkChain."""

    def __mapping__(self) -> dict[str, Any]:
        return {path: handler for path, handler in super().__mapping__().items()
                if not path.endswith("/PutChunkChain")}


class _Workers:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.services: dict[str, WorkerService] = {}
        self.grpc: list[WorkerGrpcService] = []
        self.servers: list[Server] = []
        self.addresses: dict[str, str] = {}
        self.clients: list[GrpcWorkerClient] = []

    async def start(self, worker_id: str, *, old: bool = False) -> None:
        service = WorkerService(worker_id, LocalChunkStore(self.root / worker_id))
        await service.open()
        kind = _OldWorkerGrpcService if old else WorkerGrpcService
        face = kind(service, PeerChannels(TOKEN))
        server = require_cluster_token(ChunkServer([face]), TOKEN)
        port = free_port()
        await server.start("127.0.0.1", port)
        self.services[worker_id] = service
        self.grpc.append(face)
        self.servers.append(server)
        self.addresses[worker_id] = f"127.0.0.1:{port}"

    def client(self, worker_id: str) -> GrpcWorkerClient:
        client = GrpcWorkerClient(worker_id, self.addresses[worker_id], cluster_token=TOKEN)
        self.clients.append(client)
        return client

    async def chain(self, chain: list[str], frame: bytes, chunk_id: str
                    ) -> dict[str, Exception | None]:
        head = self.client(chain[0])
        downstream = [(w, self.addresses[w]) for w in chain[1:]]
        outcomes: list[HopOutcome] = [o async for o in head.put_chunk_chain(
            chunk_id, frame, downstream, hop_timeout=2.0)]
        assert len(outcomes) == len(chain)
        return {o.worker_id: o.error for o in outcomes}

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        for server in self.servers:
            server.close()
            await server.wait_closed()
        for face in self.grpc:
            face.close()
        for service in self.services.values():
            await service.close()


@pytest.fixture
async def workers(tmp_path) -> AsyncIterator[_Workers]:
    grid = _Workers(tmp_path)
    try:
        yield grid
    finally:
        await grid.close()


async def test_a_frame_relayed_down_three_workers_is_stored_by_each(workers):
    for worker_id in ("w1", "w2", "w3"):
        await workers.start(worker_id)
    chunk = encode_chunk(os.urandom(MIB))
    outcomes = await workers.chain(["w1", "w2", "w3"], chunk.frame, chunk.chunk_id)
    assert outcomes == {"w1": None, "w2": None, "w3": None}
    for service in workers.services.values():
        assert await service.get_chunk(chunk.chunk_id) == chunk.frame


async def test_a_damaged_frame_is_refused_by_every_hop(workers):
    for worker_id in ("w1", "w2"):
        await workers.start(worker_id)
    chunk = encode_chunk(os.urandom(MIB))
    damaged = chunk.frame[:-1] + bytes([chunk.frame[-1] ^ 1])
    outcomes = await workers.chain(["w1", "w2"], damaged, chunk.chunk_id)
    assert all(isinstance(e, CorruptChunk) for e in outcomes.values()), outcomes


async def test_an_old_worker_down_the_chain_is_reported_unsupported(workers):
    await workers.start("w1")
    await workers.start("w2", old=True)
    await workers.start("w3")
    chunk = encode_chunk(os.urandom(MIB))
    outcomes = await workers.chain(["w1", "w2", "w3"], chunk.frame, chunk.chunk_id)
    assert outcomes["w1"] is None
    assert isinstance(outcomes["w2"], ChainUnsupported)
    assert isinstance(outcomes["w3"], HopNotReached)


async def test_an_old_head_makes_its_client_fall_back_for_good(workers):
    await workers.start("w1", old=True)
    await workers.start("w2")
    head = workers.client("w1")
    chunk = encode_chunk(os.urandom(MIB))
    with pytest.raises(ChainUnsupported):
        async for _ in head.put_chunk_chain(chunk.chunk_id, chunk.frame,
                                            [("w2", workers.addresses["w2"])], 2.0):
            pass
    assert not head.supports_chain
