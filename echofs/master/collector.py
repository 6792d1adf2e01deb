"""The garbage collector: removes chunks no version references any more.

A chunk becomes garbage when its last referencing version is deleted or
pruned, or when the upload that stored it failed. The collector claims such a
chunk in the metadata store (only if nothing references it and no upload
touched it within ``grace`` seconds), deletes its copies from every registered
worker, and then forgets it. If a worker cannot be reached the chunk stays
claimed and the next pass tries again; nothing still referenced is ever
claimed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from echofs.daemon import Daemon
from echofs.master.chunk_io import ChunkIO
from echofs.master.membership import WorkerRegistry
from echofs.master.storage_space import StorageSpace
from echofs.metadata.repository import MetadataRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CollectionReport:
    claimed: int
    removed: int
    copies_deleted: int


class GarbageCollector(Daemon):
    name = "collector"

    def __init__(self, repo: MetadataRepository, registry: WorkerRegistry, chunk_io: ChunkIO,
                 *, grace: float, interval: float, batch: int = 500,
                 pressure_grace: float | None = None, space: StorageSpace | None = None) -> None:
        super().__init__(interval)
        self.repo = repo
        self.registry = registry
        self.chunk_io = chunk_io
        self.grace = grace
        self.pressure_grace = grace if pressure_grace is None else min(pressure_grace, grace)
        self.space = space
        self.batch = batch
        self.pressed = False  # storage was short at the last pass

    def current_grace(self) -> float:
        """The grace period the next pass uses."""
        return self.pressure_grace if self.pressed else self.grace

    async def run_once(self, grace: float | None = None) -> CollectionReport:
        pressed = self.space is not None and self.space.short()
        if pressed and not self.pressed:
            log.warning("storage is short of space: deleted data is reclaimed after %.0fs "
                        "instead of %.0fs", self.pressure_grace, self.grace)
        self.pressed = pressed
        cutoff = time.time() - (self.current_grace() if grace is None else grace)
        claimed = await self.repo.claim_garbage(cutoff, self.batch)
        removed: list[str] = []
        copies = 0
        for chunk_id in claimed:
            outcome = await asyncio.gather(
                *(self.chunk_io.delete(w, chunk_id) for w in self.registry.all_ids()),
                return_exceptions=True,
            )
            if any(isinstance(r, BaseException) for r in outcome):
                continue  # retried next pass: the chunk stays claimed
            copies += sum(1 for r in outcome if r is True)
            removed.append(chunk_id)
        if removed:
            await self.repo.forget_chunks(removed)
            log.info("collected %d chunk(s), %d copies deleted", len(removed), copies)
        return CollectionReport(len(claimed), len(removed), copies)
