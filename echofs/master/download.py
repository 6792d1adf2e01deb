"""The download pipeline: a version's manifest in, verified bytes out.

Each chunk is read from its best replica (live first, lowest RTT), decoded and
checked against its BLAKE3 id; a missing, unreadable or corrupt copy makes the
reader fall back to the next replica and queues a durable repair of the bad
one. A replica slower than its recent p99 is hedged: the next one is asked
too, the first verified answer wins and the other read is cancelled
(:mod:`echofs.master.read_latency`), so a frozen worker costs a fraction of
a second, not the read timeout. A corrupt chunk is never served: if no
replica is good the download fails (503 before the first byte, or a cut
connection later, which the client sees against Content-Length).

A large file's chunks are striped over its healthy replicas (consecutive
chunks start at consecutive replicas, :mod:`echofs.master.read_striping`) and
read ahead of the one being sent, within a window bounded by chunks and bytes
(:mod:`echofs.master.read_ahead`), so several workers answer at once while the
master writes to the client, and memory stays flat for any file size. An
uncompressed chunk's verified bytes are a view into the frame the worker sent,
passed to the HTTP response without another copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable

from echofs.core.chunk_codec import decode_chunk_view
from echofs.core.errors import ChunkMissing, ChunkUnavailable, CorruptChunk
from echofs.core.manifest import ChunkRef, VersionRecord
from echofs.core.ranges import ByteRange
from echofs.core.vocabulary import Liveness, ReplicationReason, Verdict
from echofs.master.chunk_cache import ChunkCache
from echofs.master.chunk_io import ChunkIO
from echofs.master.membership import WorkerRegistry
from echofs.master.read_ahead import ReadAheadWindow, read_ahead
from echofs.master.read_striping import stripe_base, striped_order
from echofs.metadata.repository import MetadataRepository
from echofs.observability import metrics

log = logging.getLogger(__name__)

# Frames this small are verified on the event loop: a thread hop would cost
# more than hashing them.
_DECODE_ON_LOOP = 64 * 1024
# Hedged reads in flight at once per master; beyond, a slow read is waited
# for as without hedging. Bounds the extra frames hedging may hold.
_MAX_HEDGES = 16
# Bytes of chunk reads a download runs ahead of the chunk it sends, unless
# the master's settings say otherwise.
READ_AHEAD_BYTES = 16 * 1024 * 1024

# Striping leaves out a replica whose typical read takes longer than this
# many times the fastest replica's, plus the slack (a replica in another
# rack or zone): hedging only catches reads slower than a replica's *own*
# p99, so a steadily slow one would otherwise slow a share of every
# download. The slack keeps scheduling noise between equals from doing so.
STRIPE_SPREAD = 4.0
STRIPE_SLACK = 0.02

# A chunk's verified bytes: a view into the worker's frame when uncompressed.
ChunkBytes = bytes | memoryview


class ChunkReader:
    def __init__(self, repo: MetadataRepository, registry: WorkerRegistry,
                 chunk_io: ChunkIO, cache: ChunkCache | None = None, *,
                 read_ahead_bytes: int = READ_AHEAD_BYTES) -> None:
        self.repo = repo
        self.registry = registry
        self.chunk_io = chunk_io
        self.cache = ChunkCache(0) if cache is None else cache
        self.read_ahead_bytes = read_ahead_bytes
        self.repairs_queued = 0
        # Hedged reads running now, over every download: each may hold a
        # chunk's frame beside the read it hedges, so they are capped.
        self._hedges = 0

    async def read(self, ref: ChunkRef, stripe: int | None = None) -> ChunkBytes:
        """The raw bytes of one chunk, verified; repairs bad copies it meets.
        ``stripe`` (a download's stripe base plus the chunk's seq) picks the
        healthy replica asked first; without it, the lowest RTT is."""
        if self.cache.admits(ref.size):
            cached = self.cache.get(ref.chunk_id)
            if cached is not None:
                return cached
            raw = bytes(await self._read_replicas(ref, stripe))  # small: kept on its own
            self.cache.put(ref.chunk_id, raw)
            return raw
        return await self._read_replicas(ref, stripe)

    def read_order(self, ref: ChunkRef, stripe: int | None) -> list[str]:
        """The replicas of ``ref`` in the order they are asked."""
        latencies = self.chunk_io.read_latencies
        order = latencies.order(self.registry.read_order(ref.replicas))
        if stripe is None:
            return order

        typical = {w: latencies.typical(w) for w in order}
        known = [t for t in typical.values() if t is not None]
        slowest = min(known) * STRIPE_SPREAD + STRIPE_SLACK if known else math.inf

        def healthy(worker_id: str) -> bool:
            latency = typical[worker_id]
            return (self.registry.liveness(worker_id) == Liveness.ALIVE
                    and not latencies.lagging(worker_id)
                    and (latency is None or latency <= slowest))

        return striped_order(order, stripe, healthy)

    async def _read_replicas(self, ref: ChunkRef, stripe: int | None) -> ChunkBytes:
        order = self.read_order(ref, stripe)
        failures: list[str] = []
        bad: list[tuple[str, Verdict]] = []
        racing: dict[asyncio.Task[ChunkBytes], str] = {}
        hedges: set[asyncio.Task[ChunkBytes]] = set()
        tried = 0
        latencies = self.chunk_io.read_latencies
        started = time.monotonic()  # of the newest read
        try:
            while racing or tried < len(order):
                if not racing:  # nothing running (the start, or all failed): next one
                    racing[self._fetch(order[tried], ref)] = order[tried]
                    tried += 1
                    started = time.monotonic()
                newest = order[tried - 1]
                delay = (latencies.hedge_delay(newest)
                         if tried < len(order) and self._hedges < _MAX_HEDGES else None)
                waited_from = time.monotonic()
                done, _ = await asyncio.wait(racing, timeout=delay,
                                             return_when=asyncio.FIRST_COMPLETED)
                if not done and latencies.answered_since(newest, waited_from) and \
                        time.monotonic() - started < latencies.max_delay:
                    continue  # queued behind its worker's other reads, not stalled
                if not done:
                    # Slower than nearly all its recent reads: ask the next too.
                    self.chunk_io.read_latencies.note_lagging(newest)
                    hedge = self._fetch(order[tried], ref)
                    racing[hedge] = order[tried]
                    hedges.add(hedge)
                    tried += 1
                    started = time.monotonic()
                    self._hedges += 1
                    hedge.add_done_callback(self._hedge_done)
                    metrics.READ_HEDGES.labels("started").inc()
                    continue
                for task in done:
                    worker_id = racing.pop(task)
                    try:
                        raw = task.result()
                    except ChunkMissing:
                        bad.append((worker_id, Verdict.MISSING))
                        failures.append(f"{worker_id}: {Verdict.MISSING}")
                    except CorruptChunk:
                        bad.append((worker_id, Verdict.CORRUPT))
                        failures.append(f"{worker_id}: {Verdict.CORRUPT}")
                    except Exception as exc:  # unreachable, timed out, I/O error
                        failures.append(f"{worker_id}: {type(exc).__name__}")
                    else:
                        if task in hedges:
                            metrics.READ_HEDGES.labels("won").inc()
                        return raw
        finally:
            # The first good answer wins: the reads still running are dropped,
            # so a chunk's frame is held once, as without hedging.
            for task in racing:
                task.cancel()
            for task in racing:
                with contextlib.suppress(BaseException):
                    await task
            for worker_id, why in bad:
                await self._queue_repair(ref.chunk_id, worker_id, why)
        detail = ", ".join(failures) or "no replica recorded"
        raise ChunkUnavailable(f"no readable replica of chunk {ref.seq} ({detail})")

    def _fetch(self, worker_id: str, ref: ChunkRef) -> asyncio.Task[ChunkBytes]:
        return asyncio.create_task(self._fetch_verified(worker_id, ref))

    async def _fetch_verified(self, worker_id: str, ref: ChunkRef) -> ChunkBytes:
        """One replica's copy, checked against the chunk id."""
        frame = await self.chunk_io.get(worker_id, ref.chunk_id)
        if len(frame) < _DECODE_ON_LOOP:
            return decode_chunk_view(frame, ref.chunk_id)
        return await asyncio.to_thread(decode_chunk_view, frame, ref.chunk_id)

    def _hedge_done(self, _task: asyncio.Task[ChunkBytes]) -> None:
        self._hedges -= 1

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
    reader: ChunkReader, version: VersionRecord, byte_range: ByteRange | None,
    read_ahead_chunks: int,
) -> AsyncIterator[ChunkBytes]:
    """Yield the bytes of ``version`` (or of ``byte_range`` within it) in order,
    each chunk's (or its part's) as a view where that saves a copy."""
    start = byte_range.start if byte_range else 0
    end = byte_range.end + 1 if byte_range else version.size
    wanted = [c for c in version.chunks if c.offset < end and c.offset + c.size > start]
    base = stripe_base(version.file_id, version.version)
    window = ReadAheadWindow(max(1, read_ahead_chunks), reader.read_ahead_bytes)

    def fetch(ref: ChunkRef) -> Awaitable[ChunkBytes]:
        return reader.read(ref, base + ref.seq)

    reads = read_ahead(wanted, fetch, window)
    try:
        async for ref, raw in reads:
            lo = max(start - ref.offset, 0)
            hi = min(end - ref.offset, ref.size)
            yield raw if (lo, hi) == (0, ref.size) else memoryview(raw)[lo:hi]
    finally:
        await reads.aclose()
