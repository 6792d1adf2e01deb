"""Fakes for unit tests of the master's mechanisms: no sockets, no database.

- :class:`FakeWorkerClient` is a :class:`~echofs.worker.client.WorkerClient`
  whose ``put_chunk``, ``get_chunk`` and ``verify_chunk`` each follow a
  :class:`Script` the test sets: succeed, fail, hang until released, or
  answer with a corrupt copy. It keeps frames in memory, or wraps a real
  client when a test needs the bytes on a real worker.
- :class:`FakeClock` is monotonic time that moves only when the test moves
  it; installed as an event loop's clock it also drives ``asyncio`` timers
  (sleeps, ``asyncio.wait`` timeouts), so waits of seconds take none.
- :class:`PinnedRegistry` is the real worker registry with the liveness of
  chosen workers pinned (it otherwise reads the wall clock).
- :class:`FakeRepository` holds, in dicts, the part of the metadata store
  the chunk reader, the stragglers, the claim batcher and the replicator
  call: chunk states, replica lists and the replication queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from echofs.core.chunk_codec import verify_frame
from echofs.core.errors import ChunkMissing, CorruptChunk
from echofs.core.manifest import NewChunk, ReplicationTask
from echofs.core.vocabulary import ChunkState, Liveness, Verdict
from echofs.core.worker_status import StoreUsage, WorkerStatus
from echofs.master.membership import WorkerRegistry
from echofs.metadata.replication_queue import ChunkStanding
from echofs.metadata.repository import ChunkClaim
from echofs.worker.client import WorkerClient


class Answer(enum.Enum):
    SUCCEED = "succeed"
    FAIL = "fail"
    HANG = "hang"
    CORRUPT = "corrupt"


class Script:
    """How one operation of a :class:`FakeWorkerClient` answers from now on,
    and how often it was called."""

    def __init__(self) -> None:
        self.answer = Answer.SUCCEED
        self.error: BaseException = ConnectionResetError("refused by a fake worker")
        self.calls = 0
        self.waiting = 0  # calls hung right now
        self._released: asyncio.Event | None = None

    def succeed(self) -> None:
        self.answer = Answer.SUCCEED

    def fail(self, error: BaseException | None = None) -> None:
        """Raise ``error`` (by default a refused connection: unreachable)."""
        self.answer = Answer.FAIL
        if error is not None:
            self.error = error

    def corrupt(self) -> None:
        """A put stores a damaged copy (bit rot behind the worker's check; a
        wrapped real worker refuses it instead), a get returns a damaged frame
        and a verify says ``corrupt``."""
        self.answer = Answer.CORRUPT

    def hang(self) -> None:
        """Calls wait until :meth:`release` (a partition swallowing requests)."""
        self.answer = Answer.HANG
        if self._released is None or self._released.is_set():
            self._released = asyncio.Event()

    def release(self) -> None:
        """Hung calls go on and succeed, and so do later ones."""
        self.answer = Answer.SUCCEED
        if self._released is not None:
            self._released.set()

    async def next(self) -> Answer:
        """Count a call and play its answer: raise, wait, or say how to go on."""
        self.calls += 1
        if self.answer is Answer.FAIL:
            raise self.error
        if self.answer is Answer.HANG:
            released = self._released
            assert released is not None
            self.waiting += 1
            try:
                await released.wait()
            finally:
                self.waiting -= 1
            return Answer.SUCCEED
        return self.answer


def damaged(frame: bytes) -> bytes:
    """``frame`` with its last byte flipped: fails verification however it
    was framed (the digest, or the LZ4 payload, no longer matches)."""
    if not frame:
        return b"\xff"
    return frame[:-1] + bytes([frame[-1] ^ 0xFF])


class FakeWorkerClient(WorkerClient):
    """A worker whose data path a test scripts: ``client.put.hang()``,
    ``client.get.corrupt()``, ``client.verify.fail()``, ``client.put.calls``.

    Frames live in :attr:`frames`, unless ``inner`` is given: then every call
    that gets through is passed on to that real client.
    """

    def __init__(self, worker_id: str, *, inner: WorkerClient | None = None) -> None:
        self.worker_id = worker_id
        self.inner = inner
        self.frames: dict[str, bytes] = {}
        self.put = Script()
        self.get = Script()
        self.verify = Script()

    @classmethod
    def wrapping(cls, inner: WorkerClient) -> FakeWorkerClient:
        return cls(inner.worker_id, inner=inner)

    async def put_chunk(self, chunk_id: str, frame: bytes) -> None:
        if await self.put.next() is Answer.CORRUPT:
            frame = damaged(frame)
        if self.inner is not None:
            await self.inner.put_chunk(chunk_id, frame)
        else:
            self.frames[chunk_id] = frame

    async def get_chunk(self, chunk_id: str) -> bytes:
        answer = await self.get.next()
        frame = await self._stored(chunk_id)
        return damaged(frame) if answer is Answer.CORRUPT else frame

    async def verify_chunk(self, chunk_id: str) -> str:
        if await self.verify.next() is Answer.CORRUPT:
            return Verdict.CORRUPT
        if self.inner is not None:
            return await self.inner.verify_chunk(chunk_id)
        try:
            verify_frame(await self._stored(chunk_id), chunk_id)
        except ChunkMissing:
            return Verdict.MISSING
        except CorruptChunk:
            return Verdict.CORRUPT
        return Verdict.OK

    async def delete_chunk(self, chunk_id: str) -> bool:
        if self.inner is not None:
            return await self.inner.delete_chunk(chunk_id)
        return self.frames.pop(chunk_id, None) is not None

    async def has_chunk(self, chunk_id: str) -> bool:
        if self.inner is not None:
            return await self.inner.has_chunk(chunk_id)
        return chunk_id in self.frames

    def list_chunks(self) -> AsyncIterator[str]:
        if self.inner is not None:
            return self.inner.list_chunks()
        return _iterate(sorted(self.frames))

    async def status(self) -> WorkerStatus:
        if self.inner is not None:
            return await self.inner.status()
        usage = StoreUsage(chunk_count=len(self.frames),
                           bytes_stored=sum(map(len, self.frames.values())),
                           capacity_bytes=0, free_bytes=0)
        return WorkerStatus(self.worker_id, "memory", usage, inflight=0, started_at=0.0)

    async def _stored(self, chunk_id: str) -> bytes:
        if self.inner is not None:
            return await self.inner.get_chunk(chunk_id)
        try:
            return self.frames[chunk_id]
        except KeyError:
            raise ChunkMissing(f"{self.worker_id} holds no chunk {chunk_id}") from None


async def _iterate(items: Iterable[str]) -> AsyncIterator[str]:
    for item in items:
        yield item


# Rounds of the event loop :meth:`FakeClock.tick` runs: a timer firing wakes a
# future, the future a task, the task another; a handful covers the chains the
# code under test builds.
_SETTLE_ROUNDS = 20


class FakeClock:
    """Monotonic time, in seconds, that moves only by :meth:`advance`.

    Call it for the time. :meth:`installed` makes it the running loop's
    clock: asyncio timers then fire when the test has advanced past them, and
    never on their own. A test must therefore await only what it can finish
    itself; to wait out a timeout, it runs the waiting code as a task and
    ticks the clock.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "monotonic time does not go back"
        self.now += seconds

    async def tick(self, seconds: float = 0.0) -> None:
        """Let what is ready run first (a task just created sets its timers
        from the time before the advance), advance, then let everything now
        due run: timers, and the tasks they wake."""
        await _settle()
        self.advance(seconds)
        await _settle()

    @classmethod
    @contextlib.contextmanager
    def installed(cls, start: float = 1000.0) -> Iterator[FakeClock]:
        """A clock driving the running event loop until the block ends."""
        loop = asyncio.get_running_loop()
        clock = cls(start)
        loop.time = clock  # type: ignore[method-assign]
        try:
            yield clock
        finally:
            del loop.time


async def _settle() -> None:
    for _ in range(_SETTLE_ROUNDS):
        await asyncio.sleep(0)


class PinnedRegistry(WorkerRegistry):
    """The real registry, but a pinned worker's liveness is what the test
    says: placement, read order and re-homing all follow it."""

    def __init__(self, clients: Iterable[WorkerClient], *, suspect_after: float = 3.0,
                 dead_after: float = 10.0) -> None:
        super().__init__(suspect_after=suspect_after, dead_after=dead_after)
        self._pinned: dict[str, Liveness] = {}
        for client in clients:
            self.register(client)

    def pin(self, worker_id: str, liveness: Liveness) -> None:
        self._pinned[worker_id] = liveness

    def liveness(self, worker_id: str, now: float | None = None) -> str:
        return self._pinned.get(worker_id) or super().liveness(worker_id, now)


@dataclass(frozen=True, slots=True)
class QueuedCopy:
    """A replication task and when it is next due."""

    task: ReplicationTask
    due: float


class FakeRepository:
    """In-memory chunk rows, replicas and replication queue.

    Semantics follow ``MetadataRepository`` where the code under test can
    tell: one task per (chunk, target); nothing is queued for a chunk that is
    gone; a retry counts an attempt and is due ``delay`` later; a completed
    copy is a recorded replica. ``under_replicated`` counts every live chunk
    (the real one only chunks some version references). Set
    :attr:`unavailable` to make every call raise, as a database away would.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.chunks: dict[str, ChunkState] = {}
        self.copies: dict[str, list[str]] = {}
        self.queue: dict[int, QueuedCopy] = {}
        self.retried: list[tuple[ReplicationTask, float]] = []
        self.claim_calls: list[list[str]] = []
        self.unavailable: BaseException | None = None
        self._ids = itertools.count(1)

    def add_chunk(self, chunk_id: str, replicas: Sequence[str] = (),
                  state: ChunkState = ChunkState.LIVE) -> None:
        self.chunks[chunk_id] = state
        self.copies[chunk_id] = list(replicas)

    def targets(self, chunk_id: str | None = None) -> dict[str, str]:
        """Queued copies as target worker -> reason (of one chunk, if given)."""
        return {q.task.target_worker: q.task.reason for q in self.queue.values()
                if chunk_id in (None, q.task.chunk_id)}

    def _check(self) -> None:
        if self.unavailable is not None:
            raise self.unavailable

    # -- chunks and replicas -------------------------------------------------------

    async def claim_chunks(self, chunks: Sequence[NewChunk]) -> dict[str, ChunkClaim]:
        self._check()
        self.claim_calls.append([c.chunk_id for c in chunks])
        claims = {}
        for chunk in chunks:
            self.chunks.setdefault(chunk.chunk_id, ChunkState.LIVE)
            known = self.copies.setdefault(chunk.chunk_id, [])
            claims[chunk.chunk_id] = ChunkClaim(chunk.chunk_id, self.chunks[chunk.chunk_id],
                                                tuple(known))
        return claims

    async def chunk_state(self, chunk_id: str) -> str | None:
        self._check()
        return self.chunks.get(chunk_id)

    async def chunk_standing(self, chunk_id: str) -> ChunkStanding | None:
        """Every chunk here counts as referenced by a version, touched now."""
        self._check()
        state = self.chunks.get(chunk_id)
        return None if state is None else ChunkStanding(ChunkState(state), True, self.clock())

    async def add_replicas(self, chunk_id: str, worker_ids: Iterable[str]) -> None:
        self._check()
        held = self.copies.setdefault(chunk_id, [])
        held.extend(w for w in worker_ids if w not in held)

    async def replicas(self, chunk_id: str) -> tuple[str, ...]:
        self._check()
        return tuple(self.copies.get(chunk_id, ()))

    async def chunks_on_worker(self, worker_id: str, after: str | None, limit: int
                               ) -> list[tuple[str, tuple[str, ...]]]:
        self._check()
        ids = sorted(c for c, held in self.copies.items()
                     if worker_id in held and self.chunks.get(c) == ChunkState.LIVE
                     and (after is None or c > after))
        return [(c, tuple(self.copies[c])) for c in ids[:limit]]

    async def under_replicated(self, replication_factor: int, limit: int = 500
                               ) -> list[tuple[str, tuple[str, ...]]]:
        self._check()
        short = sorted(c for c, state in self.chunks.items()
                       if state == ChunkState.LIVE and len(self.copies[c]) < replication_factor)
        return [(c, tuple(self.copies[c])) for c in short[:limit]]

    # -- replication queue ---------------------------------------------------------

    async def enqueue_replication(self, chunk_id: str, target_worker: str, reason: str) -> None:
        self._check()
        if chunk_id not in self.chunks or (chunk_id, target_worker) in {
                (q.task.chunk_id, q.task.target_worker) for q in self.queue.values()}:
            return
        now = self.clock()
        task = ReplicationTask(next(self._ids), chunk_id, target_worker, reason, now, 0)
        self.queue[task.task_id] = QueuedCopy(task, now)

    async def due_replications(self, limit: int = 100) -> list[ReplicationTask]:
        self._check()
        now = self.clock()
        due = sorted((q for q in self.queue.values() if q.due <= now), key=lambda q: q.due)
        return [q.task for q in due[:limit]]

    async def retry_replication(self, task: ReplicationTask, delay: float) -> None:
        self._check()
        self.retried.append((task, delay))
        queued = self.queue.get(task.task_id)
        if queued is not None:
            self.queue[task.task_id] = QueuedCopy(
                replace(queued.task, attempts=queued.task.attempts + 1), self.clock() + delay)

    async def expedite_replication(self, target_worker: str) -> int:
        self._check()
        now = self.clock()
        due = [k for k, q in self.queue.items() if q.task.target_worker == target_worker]
        for key in due:
            self.queue[key] = replace(self.queue[key], due=now)
        return len(due)

    async def complete_replication(self, task: ReplicationTask) -> None:
        self._check()
        self.queue.pop(task.task_id, None)
        await self.add_replicas(task.chunk_id, [task.target_worker])

    async def drop_replication(self, task: ReplicationTask) -> None:
        self._check()
        self.queue.pop(task.task_id, None)

    async def drop_orphaned_replication(self, task: ReplicationTask,
                                        untouched_before: float) -> bool:
        self._check()
        return False  # every chunk here is referenced

    async def replication_backlog(self) -> tuple[int, float | None]:
        self._check()
        created = [q.task.created_at for q in self.queue.values()]
        return len(created), min(created, default=None)
