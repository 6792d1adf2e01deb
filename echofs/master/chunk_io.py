"""Calls from the master to workers' chunk services, timed and accounted.

Every call's latency feeds the registry's RTT estimate (which orders reads)
and every failure its failure counters (which mark a worker suspect).
Deadlines are ``asyncio.timeout`` scopes, not ``wait_for``, which would wrap
every chunk call in a task of its own.
"""

from __future__ import annotations

import asyncio
import time

from echofs.core.errors import ChunkMissing, CorruptChunk, InsufficientStorage, Unavailable
from echofs.master.membership import WorkerRegistry


class ChunkIO:
    def __init__(self, registry: WorkerRegistry, *, write_timeout: float,
                 read_timeout: float) -> None:
        self.registry = registry
        self.write_timeout = write_timeout
        self.read_timeout = read_timeout

    def _client(self, worker_id: str):  # type: ignore[no-untyped-def]
        client = self.registry.client(worker_id)
        if client is None:
            raise Unavailable(f"worker {worker_id} is not registered")
        return client

    async def put(self, worker_id: str, chunk_id: str, frame: bytes) -> None:
        client = self._client(worker_id)
        started = time.monotonic()
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
            self.registry.observe_success(worker_id, time.monotonic() - started)
            raise
        except Exception:
            self.registry.observe_failure(worker_id)
            raise
        self.registry.observe_success(worker_id, time.monotonic() - started)
        return frame

    async def delete(self, worker_id: str, chunk_id: str) -> bool:
        client = self._client(worker_id)
        try:
            async with asyncio.timeout(self.write_timeout):
                return await client.delete_chunk(chunk_id)
        except Exception:
            self.registry.observe_failure(worker_id)
            raise
