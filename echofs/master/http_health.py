"""``GET /api/v1/health`` and ``GET /api/v1/workers/health``.

Health is ``ok`` while at least RF workers are alive and have room,
``degraded`` while a strong write can still reach its quorum or while
workers are alive but full (reads and deletes work, uploads may answer 507),
and ``unavailable`` (HTTP 503) when too few workers are alive. Full workers
are named (``workers.full``), as is a metadata disk down to its reserve.
The body gathers what an operator looks at first: the replication
backlog and convergence, the scrubber, caches, the consistency modes, and
what the storage really is: whether the copies share one disk, and how many
bytes deleted files still hold until the collector's grace period ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from echofs import __version__
from echofs.cache.base import Cache
from echofs.core.placement import write_quorum
from echofs.core.space import SpaceState
from echofs.core.vocabulary import Liveness
from echofs.master.download import ChunkReader
from echofs.master.files import FileService
from echofs.master.manifests import ManifestReader
from echofs.master.membership import WorkerRegistry
from echofs.master.modes import ControllerLink, ModeTable
from echofs.master.replicator import Replicator
from echofs.master.scrubber import Scrubber
from echofs.master.storage_space import StorageSpace
from echofs.metadata.repository import MetadataRepository
from echofs.observability import metrics
from echofs.observability.dashboard import dashboard


@dataclass(frozen=True, slots=True)
class StorageLayout:
    """Where the copies live, as far as this master can see.

    ``shared_disk``: the in-process workers of the embedded node all keep
    their chunks under one data folder, so the replication factor guards
    against a damaged copy, not against a failed disk. Remote workers'
    disks are not visible from here: False means "not known to be shared".
    """

    shared_disk: bool = False
    local_workers: int = 0
    gc_grace: float = 3600.0
    gc_pressure_grace: float = 3600.0

    def note(self) -> str | None:
        if not self.shared_disk:
            return None
        return (f"{self.local_workers} workers on one disk: copies guard against a damaged "
                "copy, not a failed disk")


@dataclass(frozen=True, slots=True)
class HealthAPI:
    role_name: str
    replication_factor: int
    repo: MetadataRepository
    registry: WorkerRegistry
    replicator: Replicator
    scrubber: Scrubber
    reader: ChunkReader
    cache: Cache
    manifests: ManifestReader
    modes: ModeTable
    files: FileService
    controller_link: ControllerLink | None
    storage: StorageLayout = StorageLayout()
    space: StorageSpace | None = None
    # The S3 endpoint's port (None: not served).
    s3_port: int | None = None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/health", self.health),
            web.get("/api/v1/workers/health", self.workers_health),
            web.get("/api/v1/replication/stats", self.replication_stats),
            web.get("/metrics/dashboard", self.metrics_dashboard),
        ]

    async def health(self, request: web.Request) -> web.Response:
        live = self.registry.live_ids()
        alive, total = len(live), len(self.registry.all_ids())
        full = self.registry.full_ids()
        rf = self.replication_factor
        quorum = write_quorum(rf)
        status = "ok" if alive >= rf else ("degraded" if alive >= quorum else "unavailable")
        metadata_space = (SpaceState.UNKNOWN if self.space is None
                          else self.space.metadata.state())
        with_room = [w for w in live if w not in full]
        if status == "ok" and (len(with_room) < rf or metadata_space is SpaceState.FULL):
            status = "degraded"  # reads and deletes work; uploads may answer 507
        depth, oldest = await self.repo.replication_backlog()
        convergence = self.replicator.last_convergence
        body = {
            "status": status, "role": self.role_name, "version": __version__,
            "service": "echofs-master",  # the original's field
            "s3": {"enabled": self.s3_port is not None, "port": self.s3_port},
            "workers": {"alive": alive, "total": total, "full": full},
            "replication_factor": rf, "write_quorum": quorum,
            "replication_queue": {
                "depth": depth,
                "oldest_age_seconds": round(time.time() - oldest, 3) if oldest else None,
                "last_convergence_seconds": round(convergence, 3) if convergence else None,
                "copies_made": self.replicator.completed,
            },
            "scrubber": {"cycles": self.scrubber.cycles,
                         "bad_copies_found": self.scrubber.bad_found},
            "read_repairs_queued": self.reader.repairs_queued,
            "cache": {"backend": self.cache.description,
                      "available": self.cache.available,
                      "manifest_hits": self.manifests.hits,
                      "manifest_misses": self.manifests.misses,
                      # Sole master of an SQLite store: read answers in memory.
                      "read_memo": None if self.repo.memo is None else {
                          "entries": len(self.repo.memo), "hits": self.repo.memo.hits,
                          "misses": self.repo.memo.misses}},
            "consistency": {
                "default_mode": self.modes.default_mode.value,
                "modes": self.modes.counts(),
                "controller_connected": bool(self.controller_link and
                                             self.controller_link.connected),
                "stale_reads": self.files.stale_reads,
            },
            "storage": {**await self._storage(), "metadata_space": metadata_space},
        }
        return web.json_response(body, status=200 if status != "unavailable" else 503)

    async def _storage(self) -> dict[str, Any]:
        waiting = await self.repo.reclaimable()
        # Short of space, the collector waits out the shorter grace period.
        pressed = self.space is not None and self.space.short()
        grace = self.storage.gc_pressure_grace if pressed else self.storage.gc_grace
        reclaim_at = (None if waiting.oldest_touched_at is None
                      else waiting.oldest_touched_at + grace)
        return {
            "shared_disk": self.storage.shared_disk,
            "short_of_space": pressed,
            "note": self.storage.note(),
            "reclaimable": {
                "chunks": waiting.chunks,
                "bytes": waiting.stored_bytes,
                "grace_seconds": grace,
                # The collector takes the first of them on its first pass
                # after this moment (it runs every GC_INTERVAL_SECONDS).
                "earliest_at": None if reclaim_at is None else datetime.fromtimestamp(
                    reclaim_at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                "earliest_in_seconds": None if reclaim_at is None else max(
                    0.0, round(reclaim_at - time.time(), 1)),
            },
        }

    async def replication_stats(self, request: web.Request) -> web.Response:
        """The replication queue as it is in the metadata store now (every
        master shares it), and this master's replicator."""
        depth, oldest = await self.repo.replication_backlog()
        breakdown = await self.repo.replication_breakdown()
        convergence = self.replicator.last_convergence
        stats = {
            "replication_factor": self.replication_factor,
            "write_quorum": write_quorum(self.replication_factor),
            "queue": {
                "depth": depth,
                "due_now": breakdown.due_now,
                "oldest_age_seconds": round(time.time() - oldest, 3) if oldest else None,
                "by_reason": breakdown.by_reason,
                "by_target_worker": breakdown.by_target,
                "max_attempts": breakdown.max_attempts,
            },
            "replicator": {
                "copies_made": self.replicator.completed,
                "last_convergence_seconds": round(convergence, 3) if convergence else None,
            },
            "workers": {"alive": len(self.registry.live_ids()),
                        "total": len(self.registry.all_ids())},
        }
        return web.json_response({"success": True, "message": "Replication statistics",
                                  "data": stats, **stats})

    async def metrics_dashboard(self, request: web.Request) -> web.Response:
        """The original's JSON summary, from this process's metrics now."""
        connections = getattr(request.protocol, "open_connections", None)
        return web.json_response(dashboard(await metrics.collect(),
                                           open_connections=connections))

    async def workers_health(self, request: web.Request) -> web.Response:
        workers = self.registry.snapshot()
        return web.json_response({
            "workers": workers,
            "alive": sum(1 for w in workers if w["state"] == Liveness.ALIVE),
            "total": len(workers),
        })
