"""The orphan sweeper: deletes chunk copies the metadata store knows nothing of.

Every chunk gets a metadata row before its bytes reach any worker, and the
collector drops the row only after deleting the copies it could reach. So a
copy on a worker without a row is an orphan: the collector ran while that
worker was away, or while a restarted master had not yet heard from it. The
sweeper asks each live worker for the ids it holds, checks them against the
metadata store, and deletes the orphans — re-checking each just before it
deletes, so a chunk an upload claimed meanwhile is kept.
"""

from __future__ import annotations

import logging

from echofs.daemon import Daemon
from echofs.master.chunk_io import ChunkIO
from echofs.master.membership import WorkerRegistry
from echofs.metadata.repository import MetadataRepository

log = logging.getLogger(__name__)

_BATCH = 500


class OrphanSweeper(Daemon):
    name = "sweeper"

    def __init__(self, repo: MetadataRepository, registry: WorkerRegistry, chunk_io: ChunkIO,
                 *, interval: float) -> None:
        super().__init__(interval)
        self.repo = repo
        self.registry = registry
        self.chunk_io = chunk_io
        self.removed = 0

    async def run_once(self) -> int:
        removed = 0
        for worker_id in self.registry.live_ids():
            try:
                removed += await self._sweep_worker(worker_id)
            except Exception as exc:  # one unreachable worker must not stop the rest
                log.warning("sweep of %s interrupted: %s", worker_id, exc)
        if removed:
            log.info("swept %d orphan chunk copies", removed)
        self.removed += removed
        return removed

    async def _sweep_worker(self, worker_id: str) -> int:
        client = self.registry.client(worker_id)
        if client is None:
            return 0
        removed = 0
        batch: list[str] = []
        async for chunk_id in client.list_chunks():
            batch.append(chunk_id)
            if len(batch) >= _BATCH:
                removed += await self._sweep(worker_id, batch)
                batch = []
        if batch:
            removed += await self._sweep(worker_id, batch)
        return removed

    async def _sweep(self, worker_id: str, chunk_ids: list[str]) -> int:
        unknown = set(chunk_ids) - await self.repo.known_chunks(chunk_ids)
        removed = 0
        for chunk_id in sorted(unknown):
            if await self.repo.chunk_state(chunk_id) is not None:
                continue  # claimed by an upload since we looked
            if await self.chunk_io.delete(worker_id, chunk_id):
                removed += 1
        return removed
