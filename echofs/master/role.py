"""The master role assembled: metadata, membership, pipelines, daemons, REST."""

from __future__ import annotations

import time

from aiohttp import web

from echofs import __version__
from echofs.config import Settings
from echofs.core.placement import write_quorum
from echofs.master.chunk_io import ChunkIO
from echofs.master.collector import GarbageCollector
from echofs.master.download import ChunkReader
from echofs.master.http_errors import error_middleware
from echofs.master.http_files import FilesAPI
from echofs.master.membership import WorkerRegistry
from echofs.master.replicator import Replicator
from echofs.master.scrubber import Scrubber
from echofs.master.upload import PipelineSettings, UploadPipeline
from echofs.metadata.repository import MetadataRepository

# Multipart overhead allowed on top of MAX_UPLOAD_SIZE before aiohttp itself
# refuses a body (our pipeline enforces the exact limit while streaming).
_BODY_SLACK = 1024 * 1024


class MasterRole:
    def __init__(self, settings: Settings, repo: MetadataRepository,
                 registry: WorkerRegistry, *, role_name: str = "master") -> None:
        self.settings = settings
        self.repo = repo
        self.registry = registry
        self.role_name = role_name
        self.chunk_io = ChunkIO(registry, write_timeout=settings.write_timeout,
                                read_timeout=settings.read_timeout)
        self.uploads = UploadPipeline(repo, registry, self.chunk_io, PipelineSettings(
            chunk_size=settings.chunk_size,
            replication_factor=settings.replication_factor,
            pipeline_depth=settings.pipeline_depth,
            versions_kept=settings.versions_kept,
            max_upload_size=settings.max_upload_size,
            gc_grace=settings.gc_grace,
        ))
        self.reader = ChunkReader(repo, registry, self.chunk_io)
        self.collector = GarbageCollector(repo, registry, self.chunk_io,
                                          grace=settings.gc_grace, interval=settings.gc_interval)
        self.replicator = Replicator(repo, registry, self.chunk_io,
                                     replication_factor=settings.replication_factor,
                                     interval=settings.replication_interval)
        self.scrubber = Scrubber(repo, registry, interval=settings.scrub_interval,
                                 rate=settings.scrub_rate)

    async def start(self) -> None:
        self.collector.start()
        self.replicator.start()
        self.scrubber.start()

    async def stop(self) -> None:
        await self.scrubber.stop()
        await self.replicator.stop()
        await self.collector.stop()

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[error_middleware],
                              client_max_size=self.settings.max_upload_size + _BODY_SLACK)
        app.add_routes(FilesAPI(self).routes())
        app.add_routes([
            web.get("/api/v1/health", self.health),
            web.get("/api/v1/workers/health", self.workers_health),
        ])
        return app

    async def health(self, request: web.Request) -> web.Response:
        alive = len(self.registry.live_ids())
        total = len(self.registry.all_ids())
        quorum = write_quorum(self.settings.replication_factor)
        status = "ok" if alive >= self.settings.replication_factor else (
            "degraded" if alive >= quorum else "unavailable")
        depth, oldest = await self.repo.replication_backlog()
        convergence = self.replicator.last_convergence
        body = {
            "status": status, "role": self.role_name, "version": __version__,
            "workers": {"alive": alive, "total": total},
            "replication_factor": self.settings.replication_factor, "write_quorum": quorum,
            "replication_queue": {
                "depth": depth,
                "oldest_age_seconds": round(time.time() - oldest, 3) if oldest else None,
                "last_convergence_seconds": round(convergence, 3) if convergence else None,
                "copies_made": self.replicator.completed,
            },
            "scrubber": {"cycles": self.scrubber.cycles,
                         "bad_copies_found": self.scrubber.bad_found},
            "read_repairs_queued": self.reader.repairs_queued,
        }
        return web.json_response(body, status=200 if status != "unavailable" else 503)

    async def workers_health(self, request: web.Request) -> web.Response:
        workers = self.registry.snapshot()
        return web.json_response({
            "workers": workers,
            "alive": sum(1 for w in workers if w["state"] == "alive"),
            "total": len(workers),
        })
