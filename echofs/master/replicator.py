"""The replicator: keeps every chunk at RF copies.

It drains the durable replication queue: each task says "worker W should
hold chunk C" (a write that reached quorum but not every target, a copy a
read or the scrubber found missing or corrupt). It reads a verified copy from
another replica, writes it to W and records the new replica; failures are
retried with backoff. Because tasks live in the metadata store, a master that
crashes resumes them on restart.

When a worker is declared dead its chunks get new homes: for each chunk it
held, the placement over the remaining workers names who is missing a copy,
and a task is queued for each. Tasks aimed at a dead worker are re-aimed the
same way. That placement is :meth:`echofs.master.placement.Placement.homes`,
the object uploads ask for their write targets too.

A task whose chunk no version references, and that no upload has touched
for ``orphan_after`` seconds, is dropped unattempted: it was owed by an
upload that never committed (its master crashed, its client went away), and
such a copy could only retry until the collector removes the chunk — its
surviving copies were never recorded, since replicas are recorded at commit.
Dropping it is safe however the age is chosen: an upload that does commit
later records the copies it has, and the under-replication scan below queues
the rest.

A worker that comes back makes its owed copies due at once, whatever their
backoff: the membership service says so on the heartbeat that finds it alive
again (:meth:`Replicator.worker_up`), and each pass also compares who is
alive with the pass before, since a worker can turn alive between
heartbeats (its suspicion came from failed calls, which simply age out) and
no heartbeat then reports the change. Its copies then run in parallel,
:data:`_CONCURRENCY` at a time, and a pass does not wait more than
``pass_wait`` for them: a copy hung on a worker cut off mid-call (up to the
write timeout) goes on in the background instead of holding back every copy
due after it — the next pass, woken the moment a worker returns, starts those
at once (a task still in flight is not started twice).

Convergence time — from the moment a fault heals (a worker comes back) or a
backlog appears, until the queue is empty again — is measured here.
"""

from __future__ import annotations

import asyncio
import logging
import time

from echofs.core.chunk_codec import decode_chunk
from echofs.core.errors import ChunkUnavailable
from echofs.core.manifest import ReplicationTask
from echofs.core.vocabulary import ChunkState, Liveness, ReplicationReason
from echofs.daemon import Daemon
from echofs.master.chunk_io import ChunkIO
from echofs.master.membership import WorkerRegistry
from echofs.master.placement import Placement
from echofs.metadata.replication_queue import ChunkStanding
from echofs.metadata.repository import MetadataRepository
from echofs.observability import metrics

log = logging.getLogger(__name__)

_MAX_BACKOFF = 60.0
_PAGE = 500
_CONCURRENCY = 8
# Longest a pass waits for the copies it started (see the module docstring).
PASS_WAIT = 1.0


class _TargetAway(ChunkUnavailable):
    """The copy's target was not alive when the copy was tried."""


class Replicator(Daemon):
    name = "replicator"

    def __init__(self, repo: MetadataRepository, registry: WorkerRegistry, chunk_io: ChunkIO,
                 *, replication_factor: int, interval: float,
                 orphan_after: float = 300.0, pass_wait: float = PASS_WAIT) -> None:
        super().__init__(interval)
        self.repo = repo
        self.registry = registry
        self.chunk_io = chunk_io
        self.replication_factor = replication_factor
        self.orphan_after = orphan_after
        self.pass_wait = pass_wait
        # Copies running, by task id: started by a pass, maybe still going after it.
        self._inflight: dict[int, asyncio.Task[bool]] = {}
        self.placement = Placement(registry, replication_factor)
        self.completed = 0
        # Copies in flight at once: enough to overlap worker latency, few
        # enough to leave bandwidth for clients.
        self._slots = asyncio.Semaphore(_CONCURRENCY)
        self._rehomed: set[str] = set()
        self._backlog_since: float | None = None
        self._healed_at: float | None = None
        self.last_convergence: float | None = None
        # Who was alive at the last pass: a worker alive now and not then
        # came back, whether or not a heartbeat said so.
        self._alive: set[str] = set(registry.live_ids())

    async def worker_up(self, worker_id: str) -> None:
        """A worker (re)joined: its pending copies are due now, and it owns its
        placements again."""
        self._rehomed.discard(worker_id)
        self._healed_at = time.time()
        await self.repo.expedite_replication(worker_id)
        # Woken even with nothing queued for it: chunks left short of RF
        # while it was away are found (and queued) by the pass itself.
        self.wake()

    async def _note_comebacks(self) -> None:
        alive = set(self.registry.live_ids())
        back, self._alive = alive - self._alive, alive
        for worker_id in sorted(back):
            self._rehomed.discard(worker_id)
            self._healed_at = time.time()
            await self.repo.expedite_replication(worker_id)

    async def run_once(self) -> int:
        """Re-home dead workers' chunks, then copy until nothing is due."""
        await self._note_comebacks()
        # Copies already due (a returning worker's, above all) start before
        # the scans below, which read the whole chunk table.
        early = await self._start_due()
        await self._rehome_dead_workers()
        await self._restore_replication_factor()
        # Note a backlog before draining it too: one that appears and is drained
        # within a single pass still has a convergence time.
        await self._measure_backlog()
        done = await self._drain(early)
        await self._measure_backlog()
        return done

    async def _start_due(self) -> list[asyncio.Task[bool]]:
        tasks = await self.repo.due_replications(_PAGE)
        return [self._start(t) for t in tasks if t.task_id not in self._inflight]

    async def _drain(self, started: list[asyncio.Task[bool]]) -> int:
        """Wait (at most ``pass_wait`` a page) for the copies started, then
        start and wait for the next due ones until none is left."""
        done = 0
        while True:
            if started:
                finished, _ = await asyncio.wait(started, timeout=self.pass_wait)
                results = [t.result() for t in finished if not t.cancelled()]
                done += sum(results)
                if not any(results) or len(finished) < len(started):
                    return done
            started = await self._start_due()
            if not started:
                return done

    def _start(self, task: ReplicationTask) -> asyncio.Task[bool]:
        running = asyncio.create_task(self._attempt(task))
        self._inflight[task.task_id] = running
        running.add_done_callback(lambda _: self._inflight.pop(task.task_id, None))
        return running

    async def stop(self) -> None:
        await super().stop()
        for running in list(self._inflight.values()):
            running.cancel()
        await asyncio.gather(*self._inflight.values(), return_exceptions=True)

    async def _attempt(self, task: ReplicationTask) -> bool:
        async with self._slots:
            try:
                await self._replicate(task)
            except Exception as exc:
                delay = min(_MAX_BACKOFF, 2.0 ** min(task.attempts, 6))
                if isinstance(exc, _TargetAway) and \
                        self.registry.liveness(task.target_worker) == Liveness.ALIVE:
                    # It came back while this copy was being tried: the
                    # comeback's expedite may already have run, and a backoff
                    # written now would undo it.
                    delay = 0.0
                log.warning("replication of %s to %s failed (%s); retry in %.0fs",
                            task.chunk_id[:12], task.target_worker, exc, delay)
                await self.repo.retry_replication(task, delay)
                metrics.REPLICATION_COPIES.labels("failed").inc()
                return False
        metrics.REPLICATION_COPIES.labels("ok").inc()
        self.completed += 1  # here: a copy may finish after the pass that started it
        return True

    async def _measure_backlog(self) -> None:
        depth, oldest = await self.repo.replication_backlog()
        now = time.time()
        if depth and self._backlog_since is None:
            self._backlog_since = oldest or now
        elif not depth and self._backlog_since is not None:
            start = max(self._backlog_since, self._healed_at or 0.0)
            self.last_convergence = now - start
            metrics.CONVERGENCE.observe(self.last_convergence)
            self._backlog_since = None
            log.info("replication converged in %.2fs", self.last_convergence)

    async def _rehome_dead_workers(self) -> None:
        for worker_id in self.registry.dead_ids():
            if worker_id in self._rehomed:
                continue
            queued, after = 0, None
            while page := await self.repo.chunks_on_worker(worker_id, after, _PAGE):
                for chunk_id, replicas in page:
                    queued += await self._queue_new_homes(chunk_id, replicas)
                after = page[-1][0]
            self._rehomed.add(worker_id)
            log.warning("worker %s is dead: %d copies queued on other workers", worker_id, queued)

    async def _restore_replication_factor(self) -> None:
        """Chunks short of RF copies (written while a worker was away, and
        that worker is back) get tasks for the placement targets they lack."""
        for chunk_id, replicas in await self.repo.under_replicated(self.replication_factor):
            await self._queue_new_homes(chunk_id, replicas)

    async def _queue_new_homes(self, chunk_id: str, replicas: tuple[str, ...]) -> int:
        queued = 0
        for target in self.placement.homes(chunk_id):
            if target not in replicas:
                await self.repo.enqueue_replication(chunk_id, target, ReplicationReason.REHOME)
                queued += 1
        return queued

    async def _replicate(self, task: ReplicationTask) -> None:
        standing = await self.repo.chunk_standing(task.chunk_id)
        if standing is None or standing.state != ChunkState.LIVE:
            # Collected meanwhile: nothing to restore.
            await self.repo.drop_replication(task)
            metrics.REPLICATION_TASKS_DROPPED.labels("collected").inc()
            return
        if await self._drop_if_orphaned(task, standing):
            return
        if self.registry.liveness(task.target_worker) == Liveness.DEAD:
            # Nobody to give the copy to: aim it at the chunk's new home instead.
            await self.repo.drop_replication(task)
            metrics.REPLICATION_TASKS_DROPPED.labels("target_dead").inc()
            await self._queue_new_homes(task.chunk_id, await self.repo.replicas(task.chunk_id))
            return
        if self.registry.liveness(task.target_worker) != Liveness.ALIVE:
            raise _TargetAway(f"target {task.target_worker} is not alive")
        sources = [w for w in await self.repo.replicas(task.chunk_id) if w != task.target_worker]
        for source in self.registry.read_order(sources):
            try:
                frame = await self.chunk_io.get(source, task.chunk_id)
                await asyncio.to_thread(decode_chunk, frame, task.chunk_id)
            except Exception:
                continue
            await self.chunk_io.put(task.target_worker, task.chunk_id, frame)
            await self.repo.complete_replication(task)
            return
        metrics.REPLICATION_NO_SOURCE.inc()
        raise ChunkUnavailable(f"no good source copy of chunk {task.chunk_id[:12]}")

    async def _drop_if_orphaned(self, task: ReplicationTask, standing: ChunkStanding) -> bool:
        """Drop a copy owed to a chunk of an upload that will never commit."""
        untouched_before = time.time() - self.orphan_after
        if standing.referenced or standing.touched_at >= untouched_before:
            return False  # committed, or its upload may still be running
        if not await self.repo.drop_orphaned_replication(task, untouched_before):
            return False  # an upload took the chunk up again meanwhile
        metrics.REPLICATION_TASKS_DROPPED.labels("orphaned").inc()
        log.info("dropped the copy of chunk %s owed to %s: no version uses it and no upload "
                 "touched it for %.0fs", task.chunk_id[:12], task.target_worker,
                 time.time() - standing.touched_at)
        return True
