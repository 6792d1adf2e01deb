"""The download pipeline: a version's manifest in, verified bytes out.

Each chunk is read from its best replica (live first, lowest RTT), decoded and
checked against its BLAKE3 id; a missing, unreadable or corrupt copy makes the
reader fall back to the next replica and queues a durable repair of the bad
one. A corrupt chunk is never served: if no replica is good the download fails
(503 before the first byte, or a cut connection later, which the client sees
against Content-Length).

A few chunks are read ahead of the one being sent, so worker latency overlaps
network time; memory stays bounded by ``read_ahead`` chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator

from echofs.core.chunk_codec import decode_chunk
from echofs.core.errors import ChunkMissing, ChunkUnavailable, CorruptChunk
from echofs.core.manifest import ChunkRef, VersionRecord
from echofs.core.ranges import ByteRange
from echofs.core.vocabulary import ReplicationReason, Verdict
from echofs.master.chunk_cache import ChunkCache
from echofs.master.chunk_io import ChunkIO
from echofs.master.membership import WorkerRegistry
from echofs.metadata.repository import MetadataRepository

log = logging.getLogger(__name__)

# Frames this small are verified on the event loop: a thread hop would cost
# more than hashing them.
_DECODE_ON_LOOP = 64 * 1024


class ChunkReader:
    def __init__(self, repo: MetadataRepository, registry: WorkerRegistry,
                 chunk_io: ChunkIO, cache: ChunkCache | None = None) -> None:
        self.repo = repo
        self.registry = registry
        self.chunk_io = chunk_io
        self.cache = ChunkCache(0) if cache is None else cache
        self.repairs_queued = 0

    async def read(self, ref: ChunkRef) -> bytes:
        """The raw bytes of one chunk, verified; repairs bad copies it meets."""
        if self.cache.admits(ref.size):
            cached = self.cache.get(ref.chunk_id)
            if cached is not None:
                return cached
            raw = await self._read_replicas(ref)
            self.cache.put(ref.chunk_id, raw)
            return raw
        return await self._read_replicas(ref)

    async def _read_replicas(self, ref: ChunkRef) -> bytes:
        failures: list[str] = []
        bad: list[tuple[str, Verdict]] = []
        try:
            for worker_id in self.registry.read_order(ref.replicas):
                try:
                    frame = await self.chunk_io.get(worker_id, ref.chunk_id)
                    if len(frame) < _DECODE_ON_LOOP:
                        return decode_chunk(frame, ref.chunk_id)
                    return await asyncio.to_thread(decode_chunk, frame, ref.chunk_id)
                except ChunkMissing:
                    bad.append((worker_id, Verdict.MISSING))
                    failures.append(f"{worker_id}: {Verdict.MISSING}")
                except CorruptChunk:
                    bad.append((worker_id, Verdict.CORRUPT))
                    failures.append(f"{worker_id}: {Verdict.CORRUPT}")
                except Exception as exc:  # unreachable, timed out, I/O error
                    failures.append(f"{worker_id}: {type(exc).__name__}")
        finally:
            for worker_id, why in bad:
                await self._queue_repair(ref.chunk_id, worker_id, why)
        detail = ", ".join(failures) or "no replica recorded"
        raise ChunkUnavailable(f"no readable replica of chunk {ref.seq} ({detail})")

    async def _queue_repair(self, chunk_id: str, worker_id: str, why: Verdict) -> None:
        log.warning("read found a %s copy of chunk %s on %s; repair queued",
                    why, chunk_id[:12], worker_id)
        try:
            await self.repo.enqueue_replication(
                chunk_id, worker_id, ReplicationReason.read_repair(why))
            self.repairs_queued += 1
        except Exception:  # the read itself must not fail because of this
            log.exception("could not queue repair of chunk %s on %s", chunk_id, worker_id)


async def stream_version(
    reader: ChunkReader, version: VersionRecord, byte_range: ByteRange | None, read_ahead: int
) -> AsyncIterator[bytes]:
    """Yield the bytes of ``version`` (or of ``byte_range`` within it) in order."""
    start = byte_range.start if byte_range else 0
    end = byte_range.end + 1 if byte_range else version.size
    wanted = [c for c in version.chunks if c.offset < end and c.offset + c.size > start]
    pending: deque[tuple[ChunkRef, asyncio.Task[bytes]]] = deque()
    queue = iter(wanted)

    def fill() -> None:
        while len(pending) < max(1, read_ahead):
            ref = next(queue, None)
            if ref is None:
                return
            pending.append((ref, asyncio.create_task(reader.read(ref))))

    try:
        fill()
        while pending:
            ref, task = pending.popleft()
            raw = await task
            fill()
            lo = max(start - ref.offset, 0)
            hi = min(end - ref.offset, ref.size)
            yield raw if (lo, hi) == (0, ref.size) else raw[lo:hi]
    finally:
        for _, task in pending:
            task.cancel()
        for _, task in pending:
            with contextlib.suppress(BaseException):
                await task
