"""What a worker does with chunks, whatever transport reaches it.

The service verifies every frame it is given before storing it (a frame
damaged in transit is refused, not persisted; one frame object given to
several workers of one process is checked once, see
:mod:`echofs.worker.verified_frames`) and counts its load. Transports
(in-process calls today, gRPC in a cluster) are thin layers over it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from echofs.core.errors import ChunkMissing, CorruptChunk
from echofs.core.vocabulary import Verdict
from echofs.core.worker_status import WorkerStatus
from echofs.observability.metrics import store_operation, untrack
from echofs.observability.state import track_worker
from echofs.worker.stores.base import ChunkStore
from echofs.worker.verified_frames import PROCESS_FRAMES


class WorkerService:
    def __init__(self, worker_id: str, store: ChunkStore) -> None:
        self.worker_id = worker_id
        self.store = store
        self.started_at = time.time()
        self._inflight = 0

    async def open(self) -> None:
        await self.store.open()
        track_worker(self)

    async def close(self) -> None:
        untrack(self)
        await self.store.close()

    async def put_chunk(self, chunk_id: str, frame: bytes) -> None:
        self._inflight += 1
        try:
            await PROCESS_FRAMES.verify(frame, chunk_id)
            with store_operation(self.worker_id, "put"):
                await self.store.put(chunk_id, frame)
        finally:
            self._inflight -= 1

    async def get_chunk(self, chunk_id: str) -> bytes:
        """The stored frame. A copy the store finds damaged raises
        :class:`CorruptChunk` (the reader tries another replica and queues a
        repair); damaged bytes are never returned."""
        self._inflight += 1
        try:
            with store_operation(self.worker_id, "get"):
                return await self.store.get(chunk_id)
        finally:
            self._inflight -= 1

    async def verify_chunk(self, chunk_id: str) -> Verdict:
        """Re-read and check a stored copy here, where the bytes are. Only the
        verdict crosses the network."""
        try:
            with store_operation(self.worker_id, "verify"):
                frame = await self.store.reread(chunk_id)
            # The store's own checksum may hold while the frame is still not
            # this chunk (a store without one, or damage before it was
            # checksummed): the digest decides.
            await PROCESS_FRAMES.verify(frame, chunk_id)
        except ChunkMissing:
            return Verdict.MISSING
        except CorruptChunk:  # from the store's checksum or the digest
            return Verdict.CORRUPT
        return Verdict.OK

    async def delete_chunk(self, chunk_id: str) -> bool:
        with store_operation(self.worker_id, "delete"):
            return await self.store.delete(chunk_id)

    async def has_chunk(self, chunk_id: str) -> bool:
        with store_operation(self.worker_id, "has"):
            return await self.store.has(chunk_id)

    def list_chunks(self) -> AsyncIterator[str]:
        return self.store.list_ids()

    async def status(self) -> WorkerStatus:
        usage = await self.store.usage()
        return WorkerStatus(
            self.worker_id, self.store.description, usage, self._inflight, self.started_at
        )

