"""The worker's gRPC face: generated ``WorkerServiceBase`` over a
:class:`~echofs.worker.service.WorkerService`. No storage logic here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from echofs.observability.grpc import log_batch_item
from echofs.rpc.chain_relay import ChainRelay, PeerChannels
from echofs.rpc.convert import status_to_msg, to_grpc_error
from echofs.rpc.generated.echofs.v1 import (
    ChainAck,
    ChunkIdBatch,
    ChunkPart,
    ChunkRef,
    DeleteChunkResponse,
    HasChunkResponse,
    ListChunksRequest,
    PutChunkChainRequest,
    PutChunkRequest,
    PutChunkResponse,
    PutChunkResult,
    PutChunksRequest,
    PutChunksResponse,
    StatusRequest,
    VerifyChunkResponse,
    WorkerServiceBase,
    WorkerStatus,
)
from echofs.worker.service import WorkerService

# Large frames leave in parts (gRPC peers commonly refuse messages over 4 MiB).
# A default chunk's frame (1 MiB + header) leaves whole, as one message, not
# as a 1 MiB part and a 13-byte one.
PART_SIZE = 2 * 1024 * 1024
_LIST_BATCH = 1000
_SERVICE = "echofs.v1.WorkerService"


class WorkerGrpcService(WorkerServiceBase):
    def __init__(self, service: WorkerService, peers: PeerChannels | None = None) -> None:
        self.service = service
        # Channels to the other workers, for the write pipeline's relays.
        self.peers = peers or PeerChannels(cluster_token=None)
        self.chain = ChainRelay(service.worker_id, service.put_chunk, self.peers.forward)

    def close(self) -> None:
        self.peers.close()

    async def put_chunk(self, message: PutChunkRequest) -> PutChunkResponse:
        try:
            await self.service.put_chunk(message.chunk_id, message.frame)
        except Exception as exc:
            raise to_grpc_error(exc) from exc
        return PutChunkResponse(created=True)

    async def put_chunks(self, message: PutChunksRequest) -> PutChunksResponse:
        # All at once: the store's writer makes them durable with one sync.
        started = time.perf_counter()
        outcomes = await asyncio.gather(
            *(self.service.put_chunk(item.chunk_id, item.frame) for item in message.items),
            return_exceptions=True)
        elapsed = time.perf_counter() - started
        for item, outcome in zip(message.items, outcomes, strict=True):
            failure = to_grpc_error(outcome) if isinstance(outcome, Exception) else None
            log_batch_item(_SERVICE, "PutChunks", failure, elapsed, item.chunk_id,
                           len(item.frame), item.request_id)
        return PutChunksResponse(results=[_put_result(o) for o in outcomes])

    async def put_chunk_chain(self, message: PutChunkChainRequest) -> AsyncIterator[ChainAck]:
        try:
            self.chain.check(message)
        except Exception as exc:
            raise to_grpc_error(exc) from exc
        async for ack in self.chain.relay(message):
            yield ack

    async def get_chunk(self, message: ChunkRef) -> AsyncIterator[ChunkPart]:
        try:
            frame = await self.service.get_chunk(message.chunk_id)
        except Exception as exc:
            raise to_grpc_error(exc) from exc
        if len(frame) <= PART_SIZE:
            yield ChunkPart(data=frame, total_size=len(frame))
            return
        # Parts are views into the frame: serialising a part copies it into
        # its message once, with no copy of its own first.
        view = memoryview(frame)
        yield ChunkPart(data=view[:PART_SIZE], total_size=len(frame))  # type: ignore[arg-type]
        for offset in range(PART_SIZE, len(frame), PART_SIZE):
            yield ChunkPart(data=view[offset : offset + PART_SIZE])  # type: ignore[arg-type]

    async def delete_chunk(self, message: ChunkRef) -> DeleteChunkResponse:
        try:
            return DeleteChunkResponse(deleted=await self.service.delete_chunk(message.chunk_id))
        except Exception as exc:
            raise to_grpc_error(exc) from exc

    async def has_chunk(self, message: ChunkRef) -> HasChunkResponse:
        try:
            return HasChunkResponse(present=await self.service.has_chunk(message.chunk_id))
        except Exception as exc:
            raise to_grpc_error(exc) from exc

    async def verify_chunk(self, message: ChunkRef) -> VerifyChunkResponse:
        try:
            return VerifyChunkResponse(verdict=await self.service.verify_chunk(message.chunk_id))
        except Exception as exc:
            raise to_grpc_error(exc) from exc

    async def list_chunks(self, message: ListChunksRequest) -> AsyncIterator[ChunkIdBatch]:
        batch: list[str] = []
        async for chunk_id in self.service.list_chunks():
            batch.append(chunk_id)
            if len(batch) >= _LIST_BATCH:
                yield ChunkIdBatch(chunk_ids=batch)
                batch = []
        if batch:
            yield ChunkIdBatch(chunk_ids=batch)

    async def status(self, message: StatusRequest) -> WorkerStatus:
        return status_to_msg(await self.service.status())


def _put_result(outcome: object) -> PutChunkResult:
    if isinstance(outcome, Exception):
        error = to_grpc_error(outcome)
        return PutChunkResult(status=error.status.value, message=error.message or "")
    if isinstance(outcome, BaseException):  # cancelled: the whole call is going away
        raise outcome
    return PutChunkResult()
