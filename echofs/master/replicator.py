"""The replicator: drains the durable replication queue.

Each task says "worker W should hold chunk C" (a write that reached quorum but
not every target, a copy a read found missing or corrupt). The replicator
reads a verified copy from another replica, writes it to W and records the new
replica; failures are retried with backoff. Because tasks live in the metadata
store, a master that crashes resumes them on restart.
"""

from __future__ import annotations

import asyncio
import logging

from echofs.core.chunk_codec import decode_chunk
from echofs.core.errors import ChunkUnavailable
from echofs.core.manifest import ReplicationTask
from echofs.daemon import Daemon
from echofs.master.chunk_io import ChunkIO
from echofs.master.membership import WorkerRegistry
from echofs.metadata.repository import MetadataRepository

log = logging.getLogger(__name__)

_MAX_BACKOFF = 60.0


class Replicator(Daemon):
    name = "replicator"

    def __init__(self, repo: MetadataRepository, registry: WorkerRegistry, chunk_io: ChunkIO,
                 *, interval: float) -> None:
        super().__init__(interval)
        self.repo = repo
        self.registry = registry
        self.chunk_io = chunk_io
        self.completed = 0

    async def run_once(self) -> int:
        done = 0
        for task in await self.repo.due_replications():
            try:
                await self._replicate(task)
            except Exception as exc:
                delay = min(_MAX_BACKOFF, 2.0 ** min(task.attempts, 6))
                log.warning("replication of %s to %s failed (%s); retry in %.0fs",
                            task.chunk_id[:12], task.target_worker, exc, delay)
                await self.repo.retry_replication(task, delay)
                continue
            done += 1
        self.completed += done
        return done

    async def _replicate(self, task: ReplicationTask) -> None:
        if await self.repo.chunk_state(task.chunk_id) != "live":
            # Collected meanwhile: nothing to restore; the task row went with it.
            return
        if self.registry.liveness(task.target_worker) != "alive":
            raise ChunkUnavailable(f"target {task.target_worker} is not alive")
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
        raise ChunkUnavailable(f"no good source copy of chunk {task.chunk_id[:12]}")
