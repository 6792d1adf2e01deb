"""Calls from the master to workers' chunk services, timed and accounted.

Every call's latency feeds the registry's RTT estimate (which orders reads)
and every failure its failure counters (which mark a worker suspect); read
latencies also feed :attr:`ChunkIO.read_latencies`, which times hedged reads.
Deadlines are ``asyncio.timeout`` scopes, not ``wait_for``, which would wrap
every chunk call in a task of its own.
"""

from __future__ import annotations

import asyncio
import time

from echofs.core.errors import ChunkMissing, CorruptChunk, InsufficientStorage, Unavailable
from echofs.master.membership import WorkerRegistry
from echofs.master.quorum import Puts
from echofs.master.read_latency import ReadLatencies
from echofs.master.write_chain import WriteChain
from echofs.observability.metrics import MASTER_CHUNK_BYTES_SENT
from echofs.rpc.put_coalescer import SMALL_FRAME

# Hedged reads: the clamp of the delay before a second replica is asked.
HEDGE_MIN_DELAY = 0.02
HEDGE_MAX_DELAY = 1.0
# Write pipeline: the time each hop of a chain may take (see write_chain).
CHAIN_HOP_TIMEOUT = 2.0

_SENT_DIRECT = MASTER_CHUNK_BYTES_SENT.labels("direct")
_SENT_CHAIN = MASTER_CHUNK_BYTES_SENT.labels("chain")


class ChunkIO:
    def __init__(self, registry: WorkerRegistry, *, write_timeout: float,
                 read_timeout: float, hedge_min_delay: float = HEDGE_MIN_DELAY,
                 hedge_max_delay: float = HEDGE_MAX_DELAY,
                 chain_hop_timeout: float = CHAIN_HOP_TIMEOUT) -> None:
        self.registry = registry
        self.write_timeout = write_timeout
        self.read_timeout = read_timeout
        self.chain_hop_timeout = chain_hop_timeout
        self.read_latencies = ReadLatencies(min_delay=hedge_min_delay, max_delay=hedge_max_delay)

    def _client(self, worker_id: str):  # type: ignore[no-untyped-def]
        client = self.registry.client(worker_id)
        if client is None:
            raise Unavailable(f"worker {worker_id} is not registered")
        return client

    async def put(self, worker_id: str, chunk_id: str, frame: bytes) -> None:
        client = self._client(worker_id)
        started = time.monotonic()
        _SENT_DIRECT.inc(len(frame))
        try:
            async with asyncio.timeout(self.write_timeout):
                await client.put_chunk(chunk_id, frame)
        except InsufficientStorage:
            # The worker answered: its disk is full, not its data path broken.
            # It must not turn suspect (reads would skip it); placement writes
            # around it once its heartbeat says so.
            self.registry.observe_success(worker_id, time.monotonic() - started)
            raise
        except Exception:
            self.registry.observe_failure(worker_id)
            raise
        self.registry.observe_success(worker_id, time.monotonic() - started)

    def can_chain(self, worker_ids: list[str], frame_size: int) -> bool:
        """Does this write go down a pipeline rather than to each target?
        Only a large frame bound for several workers that can all relay it:
        small frames are coalesced per worker (PutChunks) instead, and
        in-process workers have no network egress to save."""
        if len(worker_ids) < 2 or frame_size <= SMALL_FRAME:
            return False
        clients = [self.registry.client(w) for w in worker_ids]
        return all(c is not None and c.supports_chain and c.chain_address for c in clients)

    def put_chain(self, worker_ids: list[str], chunk_id: str, frame: bytes) -> Puts:
        """Send the frame once, to the first of ``worker_ids``, which relays
        it to the others in order: one task per target, as direct puts give."""
        clients = [self._client(w) for w in worker_ids]
        _SENT_CHAIN.inc(len(frame))
        return WriteChain(self.registry, clients, chunk_id, frame,
                          hop_timeout=self.chain_hop_timeout).puts

    async def get(self, worker_id: str, chunk_id: str) -> bytes:
        client = self._client(worker_id)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.read_timeout):
                frame = await client.get_chunk(chunk_id)
        except (ChunkMissing, CorruptChunk):
            # The worker answered; it just lacks a good copy (its store found
            # the copy damaged). Not a worker fault: it must not turn suspect
            # and be skipped by the scrubber that has the copy repaired.
            self._answered(worker_id, time.monotonic() - started)
            raise
        except Exception:
            self.registry.observe_failure(worker_id)
            raise
        self._answered(worker_id, time.monotonic() - started)
        return frame

    def _answered(self, worker_id: str, seconds: float) -> None:
        self.registry.observe_success(worker_id, seconds)
        self.read_latencies.observe(worker_id, seconds)

    async def delete(self, worker_id: str, chunk_id: str) -> bool:
        client = self._client(worker_id)
        try:
            async with asyncio.timeout(self.write_timeout):
                return await client.delete_chunk(chunk_id)
        except Exception:
            self.registry.observe_failure(worker_id)
            raise
