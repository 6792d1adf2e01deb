"""A :class:`~echofs.worker.client.WorkerClient` that reaches its worker over gRPC.

One HTTP/2 channel per worker, tuned for bulk data
(:mod:`echofs.rpc.worker_transport`); grpclib multiplexes concurrent calls on it.
Worker-side errors come back as the same domain errors the in-process client
raises (missing → ChunkMissing, damaged → CorruptChunk); transport failures
surface as exceptions the master counts against the worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from grpclib import GRPCError
from grpclib.const import Status

from echofs.core.errors import CorruptChunk
from echofs.core.vocabulary import Verdict
from echofs.core.worker_status import WorkerStatus
from echofs.observability.grpc import propagate_request_id
from echofs.observability.request_id import current_request_id
from echofs.rpc.cluster_auth import send_cluster_token
from echofs.rpc.convert import (
    from_grpc_error,
    is_unimplemented,
    status_from_msg,
    verdict_from_msg,
)
from echofs.rpc.generated.echofs.v1 import (
    ChainAck,
    ChainHop,
    ChunkRef,
    ListChunksRequest,
    PutChunkChainRequest,
    PutChunkRequest,
    PutChunksRequest,
    StatusRequest,
    WorkerServiceStub,
)
from echofs.rpc.put_coalescer import BatchUnsupported, PutCoalescer
from echofs.rpc.worker_transport import ChunkChannel
from echofs.worker.client import ChainUnsupported, HopNotReached, HopOutcome, WorkerClient


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def hop_outcome(ack: ChainAck) -> HopOutcome:
    """A write pipeline's ack as the domain sees it: the error its hop's own
    put would have raised, or HopNotReached."""
    if ack.status == Status.OK.value:
        return HopOutcome(ack.worker_id, None)
    if ack.not_reached:
        return HopOutcome(ack.worker_id, HopNotReached(ack.message))
    if ack.status == Status.UNIMPLEMENTED.value:  # an older worker down the chain
        return HopOutcome(ack.worker_id, ChainUnsupported(ack.message))
    return HopOutcome(ack.worker_id, from_grpc_error(GRPCError(_status(ack.status), ack.message)))


def _status(code: int) -> Status:
    try:
        return Status(code)
    except ValueError:  # a code this grpclib does not know: a failure all the same
        return Status.UNKNOWN


# A coalesced put call's own deadline: its callers time out on their own
# (the write timeout), but a call that never ends would hold its in-flight
# slot, and every later small put to this worker would queue behind it.
BATCH_TIMEOUT = 30.0


class GrpcWorkerClient(WorkerClient):
    def __init__(self, worker_id: str, address: str, cluster_token: str | None = None) -> None:
        self.worker_id = worker_id
        self.address = address
        self.chain_address = address
        # Until it answers UNIMPLEMENTED (an older worker): then fan-out for good.
        self.supports_chain = True
        host, port = split_address(address)
        # Chunk calls made for a client request carry its id to the worker's log.
        self._channel = send_cluster_token(propagate_request_id(ChunkChannel(host, port)),
                                           cluster_token)
        self._stub = WorkerServiceStub(self._channel)
        self._puts: PutCoalescer[PutChunkRequest] = PutCoalescer(self._put_batch, self._put_one)

    async def put_chunk(self, chunk_id: str, frame: bytes) -> None:
        # A coalesced put travels with its own request's id (the call that
        # carries it serves several requests), for the worker's log line.
        request = PutChunkRequest(chunk_id=chunk_id, frame=frame,
                                  request_id=current_request_id() or "")
        await self._puts.put(request, len(frame))

    async def _put_one(self, request: PutChunkRequest) -> None:
        try:
            await self._stub.put_chunk(request)
        except GRPCError as exc:
            raise from_grpc_error(exc) from exc

    async def _put_batch(self, items: Sequence[PutChunkRequest]) -> list[Exception | None]:
        request = PutChunksRequest(items=list(items))
        try:
            reply = await self._stub.put_chunks(request, timeout=BATCH_TIMEOUT)
        except GRPCError as exc:
            if is_unimplemented(exc):
                raise BatchUnsupported(exc.message or "PutChunks") from exc
            raise from_grpc_error(exc) from exc
        return [None if r.status == Status.OK.value
                else from_grpc_error(GRPCError(Status(r.status), r.message))
                for r in reply.results]

    async def put_chunk_chain(self, chunk_id: str, frame: bytes,
                              downstream: Sequence[tuple[str, str]],
                              hop_timeout: float) -> AsyncIterator[HopOutcome]:
        request = PutChunkChainRequest(
            chunk_id=chunk_id, frame=frame, hop_timeout=hop_timeout,
            downstream=[ChainHop(worker_id=w, address=a) for w, a in downstream])
        try:
            async for ack in self._stub.put_chunk_chain(request):
                yield hop_outcome(ack)
        except GRPCError as exc:
            if is_unimplemented(exc):
                self.supports_chain = False
                raise ChainUnsupported(f"worker {self.worker_id} does not know PutChunkChain"
                                       ) from exc
            raise from_grpc_error(exc) from exc

    async def get_chunk(self, chunk_id: str) -> bytes:
        parts: list[bytes] = []
        expected = 0
        try:
            async for part in self._stub.get_chunk(ChunkRef(chunk_id=chunk_id)):
                if not parts:
                    expected = part.total_size
                parts.append(part.data)
        except GRPCError as exc:
            raise from_grpc_error(exc) from exc
        frame = parts[0] if len(parts) == 1 else b"".join(parts)
        if len(frame) != expected:
            raise CorruptChunk(f"chunk {chunk_id}: stream ended at {len(frame)} of {expected}")
        return frame

    async def delete_chunk(self, chunk_id: str) -> bool:
        try:
            return (await self._stub.delete_chunk(ChunkRef(chunk_id=chunk_id))).deleted
        except GRPCError as exc:
            raise from_grpc_error(exc) from exc

    async def has_chunk(self, chunk_id: str) -> bool:
        try:
            return (await self._stub.has_chunk(ChunkRef(chunk_id=chunk_id))).present
        except GRPCError as exc:
            raise from_grpc_error(exc) from exc

    async def verify_chunk(self, chunk_id: str) -> Verdict:
        try:
            reply = await self._stub.verify_chunk(ChunkRef(chunk_id=chunk_id))
        except GRPCError as exc:
            raise from_grpc_error(exc) from exc
        return verdict_from_msg(reply.verdict)

    async def list_chunks(self) -> AsyncIterator[str]:
        try:
            async for batch in self._stub.list_chunks(ListChunksRequest()):
                for chunk_id in batch.chunk_ids:
                    yield chunk_id
        except GRPCError as exc:
            raise from_grpc_error(exc) from exc

    async def status(self) -> WorkerStatus:
        try:
            return status_from_msg(await self._stub.status(StatusRequest()))
        except GRPCError as exc:
            raise from_grpc_error(exc) from exc

    async def close(self) -> None:
        await self._puts.close()
        self._channel.close()
