"""The worker's gRPC face: generated ``WorkerServiceBase`` over a
:class:`~echofs.worker.service.WorkerService`. No storage logic here."""

from __future__ import annotations

from collections.abc import AsyncIterator

from echofs.rpc.convert import status_to_msg, to_grpc_error
from echofs.rpc.generated.echofs.v1 import (
    ChunkIdBatch,
    ChunkPart,
    ChunkRef,
    DeleteChunkResponse,
    HasChunkResponse,
    ListChunksRequest,
    PutChunkRequest,
    PutChunkResponse,
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


class WorkerGrpcService(WorkerServiceBase):
    def __init__(self, service: WorkerService) -> None:
        self.service = service

    async def put_chunk(self, message: PutChunkRequest) -> PutChunkResponse:
        try:
            await self.service.put_chunk(message.chunk_id, message.frame)
        except Exception as exc:
            raise to_grpc_error(exc) from exc
        return PutChunkResponse(created=True)

    async def get_chunk(self, message: ChunkRef) -> AsyncIterator[ChunkPart]:
        try:
            frame = await self.service.get_chunk(message.chunk_id)
        except Exception as exc:
            raise to_grpc_error(exc) from exc
        if len(frame) <= PART_SIZE:
            yield ChunkPart(data=frame, total_size=len(frame))
            return
        view = memoryview(frame)
        yield ChunkPart(data=bytes(view[:PART_SIZE]), total_size=len(frame))
        for offset in range(PART_SIZE, len(frame), PART_SIZE):
            yield ChunkPart(data=bytes(view[offset : offset + PART_SIZE]))

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
