"""Domain values ⇄ generated messages, and domain errors ⇄ gRPC statuses.

The one place both vocabularies meet: servers and clients call these rather
than building messages or mapping errors by hand.
"""

from __future__ import annotations

from grpclib import GRPCError
from grpclib.const import Status

from echofs.core.errors import (
    BadRequest,
    ChunkMissing,
    CorruptChunk,
    EchoFSError,
    InsufficientStorage,
    Unavailable,
)
from echofs.core.vocabulary import Verdict
from echofs.core.worker_status import StoreUsage, WorkerStatus
from echofs.rpc.generated.echofs.v1 import WorkerStatus as WorkerStatusMsg


def status_to_msg(status: WorkerStatus) -> WorkerStatusMsg:
    usage = status.usage
    return WorkerStatusMsg(
        worker_id=status.worker_id, store=status.store, chunk_count=usage.chunk_count,
        bytes_stored=usage.bytes_stored, capacity_bytes=usage.capacity_bytes,
        free_bytes=usage.free_bytes, inflight=status.inflight, started_at=status.started_at,
        reserve_bytes=usage.reserve_bytes,
    )


def status_from_msg(msg: WorkerStatusMsg) -> WorkerStatus:
    return WorkerStatus(
        worker_id=msg.worker_id, store=msg.store,
        usage=StoreUsage(msg.chunk_count, msg.bytes_stored, msg.capacity_bytes, msg.free_bytes,
                         msg.reserve_bytes),
        inflight=msg.inflight, started_at=msg.started_at,
    )


def verdict_from_msg(verdict: str) -> Verdict:
    """A worker's verify answer; an unknown word fails here, not in a branch
    of the scrubber that silently never matches."""
    return Verdict(verdict)


_TO_GRPC: list[tuple[type[EchoFSError], Status]] = [
    (ChunkMissing, Status.NOT_FOUND),
    (CorruptChunk, Status.DATA_LOSS),
    (BadRequest, Status.INVALID_ARGUMENT),
    (Unavailable, Status.UNAVAILABLE),
    (InsufficientStorage, Status.RESOURCE_EXHAUSTED),
]


def to_grpc_error(exc: Exception) -> GRPCError:
    for kind, status in _TO_GRPC:
        if isinstance(exc, kind):
            return GRPCError(status, str(exc))
    if isinstance(exc, ValueError):
        return GRPCError(Status.INVALID_ARGUMENT, str(exc))
    return GRPCError(Status.INTERNAL, f"{type(exc).__name__}: {exc}")


def from_grpc_error(exc: GRPCError) -> Exception:
    message = exc.message or exc.status.name
    if exc.status is Status.NOT_FOUND:
        return ChunkMissing(message)
    if exc.status is Status.DATA_LOSS:
        return CorruptChunk(message)
    if exc.status is Status.INVALID_ARGUMENT:
        return BadRequest(message)
    if exc.status is Status.RESOURCE_EXHAUSTED:
        return InsufficientStorage(message)
    return Unavailable(f"worker RPC failed ({exc.status.name}): {message}")


# What a grpclib client reports when a grpclib server does not know the
# method: the server's trailers-only UNIMPLEMENTED answer carries no
# content-type, and the client checks that before it reads grpc-status.
_UNKNOWN_METHOD_AS_SEEN = "Missing content-type header"


def is_unimplemented(exc: GRPCError) -> bool:
    """Did the peer answer that it does not know the method (an older
    worker)? Asked of a call to a peer that serves gRPC, the answer a grpclib
    client sees for that is UNKNOWN "Missing content-type header"."""
    return exc.status is Status.UNIMPLEMENTED or (
        exc.status is Status.UNKNOWN and exc.message == _UNKNOWN_METHOD_AS_SEEN)
