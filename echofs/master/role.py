"""The master role assembled: metadata, membership, pipelines, daemons, REST."""

from __future__ import annotations

import os
import socket
import time

from aiohttp import web

from echofs import __version__
from echofs.auth.http import AuthAPI, AuthConfig, auth_middleware
from echofs.cache import open_cache
from echofs.config import Settings
from echofs.controller.client import ControllerClient
from echofs.controller.http_api import ControllerAPI
from echofs.core.consistency import Hint, Mode, parse_mode
from echofs.core.errors import ChunkUnavailable, NotFound
from echofs.core.manifest import FileRecord, VersionRecord
from echofs.core.placement import write_quorum
from echofs.master.chunk_io import ChunkIO
from echofs.master.collector import GarbageCollector
from echofs.master.consistency_proxy import CONSISTENCY_PREFIX, ConsistencyProxy
from echofs.master.download import ChunkReader
from echofs.master.http_files import FilesAPI
from echofs.master.manifests import ManifestReader
from echofs.master.membership import WorkerRegistry
from echofs.master.modes import ControllerLink, ModeTable, WriteActivity
from echofs.master.openapi import openapi_document
from echofs.master.rate_limit import rate_limit_middleware
from echofs.master.replicator import Replicator
from echofs.master.scrubber import Scrubber
from echofs.master.sweeper import OrphanSweeper
from echofs.master.upload import PipelineSettings, Upload, UploadPipeline
from echofs.metadata.repository import MetadataRepository
from echofs.metadata.users import UsersRepository
from echofs.observability.http import metrics_middleware, metrics_routes
from echofs.observability.metrics import untrack
from echofs.observability.state import track_master
from echofs.serving.middleware import error_middleware
from echofs.web import routes as web_ui_routes

# Multipart overhead allowed on top of MAX_UPLOAD_SIZE before aiohttp itself
# refuses a body (our pipeline enforces the exact limit while streaming).
_BODY_SLACK = 1024 * 1024


class MasterRole:
    def __init__(self, settings: Settings, repo: MetadataRepository,
                 registry: WorkerRegistry, *, role_name: str = "master",
                 controller: ControllerClient | None = None,
                 controller_api: ControllerAPI | None = None) -> None:
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
        # Manifest cache and rate limits: in-process, or Redis shared by masters.
        self.cache = open_cache(settings)
        self.manifests = ManifestReader(repo, self.cache)
        self.collector = GarbageCollector(repo, registry, self.chunk_io,
                                          grace=settings.gc_grace, interval=settings.gc_interval)
        self.replicator = Replicator(repo, registry, self.chunk_io,
                                     replication_factor=settings.replication_factor,
                                     interval=settings.replication_interval)
        self.scrubber = Scrubber(repo, registry, interval=settings.scrub_interval,
                                 rate=settings.scrub_rate)
        self.sweeper = OrphanSweeper(repo, registry, self.chunk_io,
                                     interval=settings.sweep_interval)
        self.auth = AuthConfig(settings.jwt_secret, settings.token_ttl)
        # Adaptive consistency: the local mode table, fed by the controller.
        self.modes = ModeTable(parse_mode(settings.default_mode))
        self.activity = WriteActivity()
        self.stale_reads = 0
        self.controller_api = controller_api
        self.controller_link = None if controller is None else ControllerLink(
            controller, self.modes, registry, repo, self.activity,
            master_id=f"{socket.gethostname()}:{settings.port}:{os.getpid()}",
            replication_factor=settings.replication_factor, interval=settings.sample_interval)

    async def start(self) -> None:
        await self.cache.start()
        track_master(self)
        self.collector.start()
        self.replicator.start()
        self.scrubber.start()
        self.sweeper.start()
        if self.controller_link is not None:
            self.controller_link.start()

    async def stop(self) -> None:
        if self.controller_link is not None:
            await self.controller_link.stop()
        await self.sweeper.stop()
        await self.scrubber.stop()
        await self.replicator.stop()
        await self.collector.stop()
        untrack(self)
        await self.cache.close()

    def build_app(self) -> web.Application:
        middlewares = [error_middleware, metrics_middleware, auth_middleware(self.auth)]
        if self.settings.rate_limit_per_minute > 0:
            middlewares.append(rate_limit_middleware(self.cache,
                                                     self.settings.rate_limit_per_minute))
        app = web.Application(middlewares=middlewares,
                              client_max_size=self.settings.max_upload_size + _BODY_SLACK)
        app.add_routes(FilesAPI(self).routes())
        app.add_routes(AuthAPI(UsersRepository(self.repo), self.auth).routes())
        app.add_routes(metrics_routes())
        app.add_routes(web_ui_routes())  # the web UI at / (echofs/web/)
        document = openapi_document()

        async def openapi(request: web.Request) -> web.Response:
            return web.json_response(document)

        app.add_routes([
            web.get("/api/v1/openapi.json", openapi),
            web.get("/api/v1/health", self.health),
            web.get("/api/v1/workers/health", self.workers_health),
        ])
        if self.controller_api is not None:
            # Controller in this process: its API is served here directly.
            app.add_routes(self.controller_api.routes(CONSISTENCY_PREFIX, CONSISTENCY_PREFIX))
        elif self.settings.controller_rest_url:
            app.add_routes(ConsistencyProxy(self.settings.controller_rest_url).routes())
        return app

    # -- consistency -----------------------------------------------------------------

    async def write_mode(self, owner: str, path: str | None, hint: Hint | None) -> Mode:
        """The mode a new write to (owner, path) uses; never asks the controller."""
        file_id = None
        # Only a file with a mode of its own can differ from the default:
        # with none, skip finding the file.
        if path is not None and self.modes.has_file_modes():
            try:
                file_id = (await self.repo.find_file(owner, path)).file_id
            except NotFound:
                file_id = None
        return self.modes.mode_for_write(file_id, hint)

    def note_write(self, file_id: str, upload: Upload) -> None:
        self.activity.record(file_id, upload.targets)
        if upload.deferred_copies:
            self.replicator.wake()  # owed copies: start now, not at the next tick

    async def newest_readable_version(self, record: FileRecord) -> tuple[VersionRecord, bool]:
        """Newest version whose every chunk has a copy on a live worker, and
        whether it is older than the latest committed one."""
        live = set(self.registry.live_ids())
        versions = await self.repo.list_versions(record.file_id, record.owner)
        for summary in versions:  # newest first
            version = await self.repo.get_version(record.file_id, summary.version,
                                                  record.owner)
            if all(live.intersection(chunk.replicas) for chunk in version.chunks):
                return version, version.version != record.current_version
        raise ChunkUnavailable("no version of this file can be assembled from live workers")

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
                "stale_reads": self.stale_reads,
            },
        }
        return web.json_response(body, status=200 if status != "unavailable" else 503)

    async def workers_health(self, request: web.Request) -> web.Response:
        workers = self.registry.snapshot()
        return web.json_response({
            "workers": workers,
            "alive": sum(1 for w in workers if w["state"] == "alive"),
            "total": len(workers),
        })
