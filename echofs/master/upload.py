"""The upload pipeline: bytes in, an acknowledged new version out.

    client bytes ─► ChunkSplitter ─► (thread) BLAKE3 + LZ4 frame ─► claim in
    metadata ─► put on the placement targets (concurrently, several chunks in
    flight) ─► every chunk at quorum ─► one transaction commits the version

Memory is bounded by ``pipeline_depth`` chunks whatever the file size: a new
chunk waits for a free slot before it is encoded. Nothing is visible until the
final commit; if the upload fails or the client goes away, the chunks already
stored stay unreferenced and the collector removes them after its grace period.

Where a chunk goes is :meth:`Placement.write_targets
<echofs.master.placement.Placement.write_targets>`; how it is made durable is
the mode's write policy (:mod:`echofs.master.write_policies`). A strong write
acknowledges a chunk once a majority of its targets stored it; it does not
wait out a target that hangs. Copies still in flight then get a short grace;
each one still missing gets a durable replication intent before the chunk
counts as placed, and goes on in the background (:class:`Stragglers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import blake3

from echofs.core.chunk_codec import EncodedChunk, encode_chunk
from echofs.core.chunking import ChunkSplitter
from echofs.core.consistency import Mode
from echofs.core.errors import PayloadTooLarge, Unavailable
from echofs.core.manifest import FileRecord, NewChunk, VersionRecord
from echofs.core.vocabulary import ChunkState
from echofs.master.chunk_cache import ChunkCache
from echofs.master.chunk_io import ChunkIO
from echofs.master.claims import MetadataBatcher
from echofs.master.placement import Placement
from echofs.master.quorum import Stragglers
from echofs.master.write_policies import WRITE_POLICIES, ChunkWrite, WriteTools
from echofs.metadata.disk_space import MetadataDisk
from echofs.metadata.records import ObjectMeta
from echofs.metadata.repository import CommitRequest, MetadataRepository

log = logging.getLogger(__name__)

# How long an upload waits for the collector to finish removing a chunk it
# wants to reuse before writing the chunk afresh.
_COLLECTION_WAIT = 10.0
# The whole-file digest must see the chunks in order. Chunks this large are
# hashed off the event loop (BLAKE3 releases the GIL) by one thread that every
# upload shares: one thread keeps each upload's chunks in order, and hashes
# several GB/s, far more than the uploads can bring. Small ones are not worth
# the hop.
_HASH_OFF_LOOP = 64 * 1024
_HASH_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="echofs-hash")
# Likewise a chunk this small is encoded on the loop (a small file's only one).
_ENCODE_OFF_LOOP = 64 * 1024


@dataclass(frozen=True, slots=True)
class UploadResult:
    file: FileRecord
    version: VersionRecord
    chunks_deduplicated: int
    bytes_deduplicated: int
    bytes_stored: int


@dataclass(frozen=True, slots=True)
class StoredBytes:
    """Bytes stored at quorum but not (yet) part of any version."""

    chunks: tuple[NewChunk, ...]
    size: int
    blake3: str
    # The fewest copies any chunk had when it was acknowledged.
    replicas_acked: int


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    chunk_size: int
    pipeline_depth: int
    versions_kept: int
    max_upload_size: int
    # The shortest grace period the collector may use (the one under space
    # pressure): an upload re-touches its chunks well within it, so however
    # long the upload runs they are not collected.
    gc_grace: float


class UploadPipeline:
    def __init__(self, repo: MetadataRepository, placement: Placement, chunk_io: ChunkIO,
                 settings: PipelineSettings, chunk_cache: ChunkCache | None = None,
                 metadata_disk: MetadataDisk | None = None) -> None:
        self.repo = repo
        # Checked before each chunk is claimed: a metadata disk down to its
        # reserve takes no new data (507), so deletes still have room there.
        self.metadata_disk = metadata_disk
        self.chunk_cache = ChunkCache(0) if chunk_cache is None else chunk_cache
        self.placement = placement
        self.settings = settings
        # Claims and commits of every upload in flight share transactions.
        self.metadata = MetadataBatcher(repo)
        self.stragglers = Stragglers(repo, limit=settings.pipeline_depth)
        self.tools = WriteTools(repo, chunk_io, placement, self.stragglers)

    def begin(self, mode: Mode = Mode.STRONG) -> Upload:
        return Upload(self, mode)

    async def close(self) -> None:
        """Finish the batches of claims and commits already queued."""
        await self.metadata.close()


class Upload:
    """One upload in progress. Feed it with :meth:`write`, then :meth:`commit`
    (or :meth:`abort`)."""

    def __init__(self, pipeline: UploadPipeline, mode: Mode) -> None:
        self._p = pipeline
        self.mode = mode
        self._policy = WRITE_POLICIES[mode]
        # Workers this upload placed chunks on (the controller's per-file signal).
        self._targets: set[str] = set()
        # True once a chunk was acknowledged with copies still owed (wake the
        # replicator after commit).
        self._deferred = False
        self._splitter = ChunkSplitter(pipeline.settings.chunk_size)
        self._hasher = blake3.blake3()
        self._hashing: asyncio.Future[None] | None = None
        self._slots = asyncio.Semaphore(pipeline.settings.pipeline_depth)
        self._tasks: list[asyncio.Task[NewChunk]] = []
        self._failure: BaseException | None = None
        self._dedup_chunks = 0
        self._dedup_bytes = 0
        self._stored_bytes = 0
        self._min_acks: int | None = None
        self._closed = False
        self._chunk_ids: dict[str, None] = {}
        self._keepalive: asyncio.Task[None] | None = None

    @property
    def size(self) -> int:
        return self._splitter.total

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed:
            raise RuntimeError("upload already finished")
        if self._splitter.total + len(data) > self._p.settings.max_upload_size:
            raise PayloadTooLarge(
                f"upload exceeds the {self._p.settings.max_upload_size}-byte limit"
            )
        for chunk in self._splitter.feed(data):
            await self._submit(chunk)

    async def _submit(self, chunk: bytes) -> None:
        self._raise_failure()
        if self._keepalive is None:
            self._keepalive = asyncio.create_task(self._keep_chunks_alive())
        self._hash(chunk)
        await self._slots.acquire()
        task = asyncio.create_task(self._store_chunk(chunk))
        task.add_done_callback(self._note_failure)
        self._tasks.append(task)

    def _hash(self, chunk: bytes) -> None:
        pending = self._hashing
        if len(chunk) < _HASH_OFF_LOOP and (pending is None or pending.done()):
            self._hasher.update(chunk)
        else:  # after whatever this upload already queued there
            self._hashing = asyncio.get_running_loop().run_in_executor(
                _HASH_THREAD, self._hasher.update, chunk)

    def _note_failure(self, task: asyncio.Task[NewChunk]) -> None:
        if self._failure is None and not task.cancelled():
            self._failure = task.exception()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def _store_chunk(self, raw: bytes) -> NewChunk:
        try:
            if len(raw) < _ENCODE_OFF_LOOP:
                encoded = encode_chunk(raw)
            else:
                encoded = await asyncio.to_thread(encode_chunk, raw)
            cache = self._p.chunk_cache
            # A small chunk's bytes are kept for the reads likely to follow;
            # a large one's are let go at once (memory stays flat).
            kept = raw if cache.admits(len(raw)) else None
            del raw
            stored = await self._place(encoded)
            if kept is not None:
                cache.put(encoded.chunk_id, kept)
            return stored
        finally:
            self._slots.release()

    async def _place(self, encoded: EncodedChunk) -> NewChunk:
        p = self._p
        new = NewChunk(encoded.chunk_id, encoded.raw_size, encoded.stored_size,
                       encoded.compressed, ())
        if p.metadata_disk is not None:
            p.metadata_disk.check()
        claim = await p.metadata.claim(new)
        if claim.state != ChunkState.LIVE:
            claim = await self._wait_for_collection(new)
        self._chunk_ids[encoded.chunk_id] = None
        where = p.placement.write_targets(encoded.chunk_id)
        self._targets.update(where.targets)
        held = [w for w in claim.replicas if w in where.live]
        if len(held) >= self._policy.copies_needed(p.placement.replication_factor):
            # Deduplicated: enough live copies exist already.
            self._dedup_chunks += 1
            self._dedup_bytes += encoded.raw_size
            self._note_acks(len(held))
            return NewChunk(new.chunk_id, new.size, new.stored_size, new.compressed,
                            tuple(claim.replicas))
        stored = await self._policy.store(ChunkWrite(encoded, claim.replicas, held, where),
                                          p.tools)
        self._stored_bytes += stored.stored_bytes
        self._note_acks(stored.copies)
        self._deferred = self._deferred or stored.deferred
        return NewChunk(new.chunk_id, new.size, new.stored_size, new.compressed,
                        stored.replicas)

    async def _keep_chunks_alive(self) -> None:
        period = max(self._p.settings.gc_grace / 4, 0.05)
        while True:
            await asyncio.sleep(period)
            if self._chunk_ids:
                try:
                    await self._p.repo.touch_chunks(list(self._chunk_ids))
                except Exception:  # the next period retries; commit re-checks anyway
                    log.warning("could not refresh the chunks of an upload", exc_info=True)

    async def _wait_for_collection(self, new: NewChunk):  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _COLLECTION_WAIT
        while loop.time() < deadline:
            await asyncio.sleep(0.1)
            claim = await self._p.metadata.claim(new)
            if claim.state == ChunkState.LIVE:
                return claim
        raise Unavailable("a chunk of this upload is being garbage-collected; retry shortly")

    def _note_acks(self, copies: int) -> None:
        self._min_acks = copies if self._min_acks is None else min(self._min_acks, copies)

    @property
    def targets(self) -> set[str]:
        return self._targets

    @property
    def deferred_copies(self) -> bool:
        return self._deferred

    async def commit(self, *, owner: str, path: str,
                     object_meta: ObjectMeta | None = None) -> UploadResult:
        """Wait for every chunk's quorum, then make the version visible (with
        S3's ``object_meta`` of it, in the same transaction)."""
        async with self._finishing():
            chunks = await self._stored()
            p = self._p
            file, version = await p.metadata.commit(CommitRequest(
                owner=owner, path=path, chunks=chunks, size=self._splitter.total,
                blake3=self._hasher.hexdigest(), mode=self.mode.value,
                replicas_acked=self._min_acks or 0,
                versions_kept=p.settings.versions_kept, object_meta=object_meta,
            ))
        return UploadResult(file, version, self._dedup_chunks, self._dedup_bytes,
                            self._stored_bytes)

    async def finish(self) -> StoredBytes:
        """Wait for every chunk's quorum and return what was stored, without
        making a version: a part of an upload session, which its session
        records (``echofs.master.upload_sessions``). Aborts on failure."""
        async with self._finishing():
            chunks = await self._stored()
        return StoredBytes(chunks, self._splitter.total, self._hasher.hexdigest(),
                           self._min_acks or 0)

    @contextlib.asynccontextmanager
    async def _finishing(self) -> AsyncIterator[None]:
        """The end of an upload: the last bytes go in, and whatever fails
        from here aborts every chunk still in flight."""
        if self._closed:
            raise RuntimeError("upload already finished")
        tail = self._splitter.finish()
        if tail is not None:
            await self._submit(tail)
        self._closed = True
        try:
            yield
        except BaseException:
            await self.abort()
            raise
        finally:
            self._stop_keepalive()

    async def _stored(self) -> tuple[NewChunk, ...]:
        chunks = tuple(await asyncio.gather(*self._tasks))
        if self._hashing is not None:
            await self._hashing
        return chunks

    def _stop_keepalive(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None

    async def abort(self) -> None:
        """Stop every chunk still in flight. What was stored is left to the
        collector: it is unreferenced, so it becomes garbage after the grace
        period."""
        self._closed = True
        self._stop_keepalive()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
