"""The worker's side of the write pipeline (``PutChunkChain``).

A large frame leaves the master once: the master sends it to the first
worker of the chain, which stores it and, at the same time, relays it to the
next with the rest of the chain as that one's downstream, and so on (the
GFS/HDFS write pipeline). Acks flow back up as each copy becomes durable, so
the master sees its quorum as soon as it exists.

Failures are cut out where they happen. The relay to the next hop must end
within ``hop_timeout`` times the hops left from there; each hop further down
gets less, so a stalled worker is reported by the nearest live one above it,
before the deadlines of those above that expire. The first hop that did not
ack is reported failed (with why: its own refusal, the transport error, the
deadline) and the hops after it *not reached*; the caller sends to those
directly. A relay never skips a hop on its own: the caller decides where a
copy goes, and it alone records copies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing

from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.const import Status

from echofs.core.errors import BadRequest
from echofs.observability.grpc import propagate_request_id
from echofs.rpc.cluster_auth import send_cluster_token
from echofs.rpc.convert import is_unimplemented, to_grpc_error
from echofs.rpc.generated.echofs.v1 import (
    ChainAck,
    ChainHop,
    PutChunkChainRequest,
    WorkerServiceStub,
)
from echofs.rpc.worker_client import split_address
from echofs.rpc.worker_transport import ChunkChannel

log = logging.getLogger(__name__)

# Stores a verified frame here (the worker service's put).
StoreFrame = Callable[[str, bytes], Awaitable[None]]
# Sends a chain request to a hop and yields the acks it streams back; the
# float is the deadline of the call, in seconds.
Forward = Callable[[ChainHop, PutChunkChainRequest, float], AsyncIterator[ChainAck]]


class PeerChannels:
    """gRPC channels from this worker to its peers, one per address, tuned and
    authenticated as the master's are; closed when the worker stops."""

    def __init__(self, cluster_token: str | None) -> None:
        self.cluster_token = cluster_token
        self._peers: dict[str, tuple[Channel, WorkerServiceStub]] = {}

    def stub(self, address: str) -> WorkerServiceStub:
        known = self._peers.get(address)
        if known is None:
            host, port = split_address(address)
            # Relayed calls carry the client request's id to the next log.
            channel = send_cluster_token(propagate_request_id(ChunkChannel(host, port)),
                                         self.cluster_token)
            known = self._peers[address] = (channel, WorkerServiceStub(channel))
        return known[1]

    async def forward(self, hop: ChainHop, request: PutChunkChainRequest,
                      seconds: float) -> AsyncIterator[ChainAck]:
        # The deadline travels with the call, so a hop whose caller gave up
        # stops relaying too.
        async for ack in self.stub(hop.address).put_chunk_chain(request, timeout=seconds):
            yield ack

    def close(self) -> None:
        for channel, _ in self._peers.values():
            channel.close()
        self._peers.clear()


class ChainRelay:
    """One worker's part in a chain: store here, relay down, stream acks up."""

    def __init__(self, worker_id: str, store: StoreFrame, forward: Forward) -> None:
        self.worker_id = worker_id
        self._store = store
        self._forward = forward

    def check(self, request: PutChunkChainRequest) -> None:
        """Refuse a chain this relay could not answer one ack per hop for."""
        hops = [self.worker_id, *(hop.worker_id for hop in request.downstream)]
        if len(set(hops)) != len(hops):
            raise BadRequest(f"a write pipeline names each worker once, not {hops}")
        if request.downstream and not request.hop_timeout > 0:
            raise BadRequest("a write pipeline's hops need a hop timeout above 0")

    async def relay(self, request: PutChunkChainRequest) -> AsyncIterator[ChainAck]:
        """Yields exactly one ack per hop (this worker first among equals:
        acks come in the order copies become durable), then ends. The
        caller checks the request first (:meth:`check`)."""
        acks: asyncio.Queue[ChainAck] = asyncio.Queue()
        tasks = [asyncio.create_task(self._store_here(request, acks))]
        if request.downstream:
            tasks.append(asyncio.create_task(self._relay_down(request, acks)))
        try:
            for _ in range(1 + len(request.downstream)):
                yield await acks.get()
        finally:
            # The caller went away (or every ack is in): nothing left to wait for.
            for task in tasks:
                task.cancel()

    async def _store_here(self, request: PutChunkChainRequest,
                          acks: asyncio.Queue[ChainAck]) -> None:
        try:
            await self._store(request.chunk_id, request.frame)
        except Exception as exc:
            acks.put_nowait(_failed(self.worker_id, to_grpc_error(exc)))
            return
        acks.put_nowait(ChainAck(worker_id=self.worker_id))

    async def _relay_down(self, request: PutChunkChainRequest,
                          acks: asyncio.Queue[ChainAck]) -> None:
        hops = list(request.downstream)
        expected = {hop.worker_id for hop in hops}
        answered: set[str] = set()
        onward = PutChunkChainRequest(chunk_id=request.chunk_id, frame=request.frame,
                                      downstream=hops[1:], hop_timeout=request.hop_timeout)
        deadline = request.hop_timeout * len(hops)
        error: GRPCError | None = None
        try:
            async with (asyncio.timeout(deadline),
                        aclosing(self._forward(hops[0], onward, deadline)) as relayed):
                async for ack in relayed:
                    if ack.worker_id in expected and ack.worker_id not in answered:
                        answered.add(ack.worker_id)
                        acks.put_nowait(ack)
        except TimeoutError:
            error = GRPCError(Status.DEADLINE_EXCEEDED,
                              f"no ack within {deadline:.2f} s (hop stalled)")
        except GRPCError as exc:
            # An older worker: said plainly, so the master sends it the copy
            # directly and stops putting it in chains.
            error = (GRPCError(Status.UNIMPLEMENTED, f"{hops[0].worker_id} does not know "
                               "PutChunkChain") if is_unimplemented(exc) else exc)
        except Exception as exc:  # connection refused or lost: the hop is away
            error = GRPCError(Status.UNAVAILABLE, f"{type(exc).__name__}: {exc}")
        missing = [hop for hop in hops if hop.worker_id not in answered]
        if not missing:
            return
        blamed = missing[0]
        error = error or GRPCError(Status.UNAVAILABLE, "the chain ended without this hop's ack")
        # The call itself ends OK (its acks say what failed): this line is
        # where an operator sees a hop cut out of a pipeline.
        log.warning("write pipeline: chunk %s not relayed to %s (%s: %s); %d hop(s) after it "
                    "not reached", request.chunk_id[:12], blamed.worker_id, error.status.name,
                    error.message, len(missing) - 1)
        acks.put_nowait(_failed(blamed.worker_id, error))
        for hop in missing[1:]:
            acks.put_nowait(ChainAck(
                worker_id=hop.worker_id, status=Status.UNAVAILABLE.value, not_reached=True,
                message=f"not reached: hop {blamed.worker_id} before it failed"))


def _failed(worker_id: str, error: GRPCError) -> ChainAck:
    return ChainAck(worker_id=worker_id, status=error.status.value,
                    message=error.message or error.status.name)
