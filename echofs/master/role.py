"""The master role assembled: metadata, membership, pipelines, daemons, REST.

This module is wiring only. What a file request does lives in the file
service (:mod:`echofs.master.files`) and its mode policies; where copies go,
in :mod:`echofs.master.placement`; the HTTP faces in ``http_files`` and
``http_health``. :meth:`MasterRole.start` starts the parts in order and each
pushes its own stop, so :meth:`MasterRole.stop` undoes exactly what started,
in reverse.
"""

from __future__ import annotations

import os
import socket
from contextlib import AsyncExitStack

from aiohttp import web

from echofs.auth.access_keys import AccessKeys
from echofs.auth.http import AuthAPI, AuthConfig
from echofs.cache import open_cache
from echofs.config import Settings
from echofs.controller.client import ControllerClient
from echofs.controller.http_api import ControllerAPI
from echofs.core.consistency import parse_mode
from echofs.master.chunk_cache import ChunkCache
from echofs.master.chunk_io import ChunkIO
from echofs.master.collector import GarbageCollector
from echofs.master.consistency_proxy import CONSISTENCY_PREFIX, ConsistencyProxy
from echofs.master.download import ChunkReader
from echofs.master.files import FileService
from echofs.master.http_files import FilesAPI
from echofs.master.http_health import HealthAPI, StorageLayout
from echofs.master.http_upload_sessions import UploadSessionsAPI
from echofs.master.manifests import ManifestReader
from echofs.master.membership import WorkerRegistry
from echofs.master.modes import ControllerLink, ModeTable, WriteActivity
from echofs.master.openapi import openapi_document
from echofs.master.rate_limit import rate_limit_middleware
from echofs.master.read_policies import VersionSources
from echofs.master.replicator import Replicator
from echofs.master.scrubber import Scrubber
from echofs.master.storage_space import StorageSpace
from echofs.master.sweeper import OrphanSweeper
from echofs.master.upload import PipelineSettings, UploadPipeline
from echofs.master.upload_sessions import SessionExpirer, SessionSettings, UploadSessionService
from echofs.metadata.disk_space import MetadataDisk
from echofs.metadata.repository import MetadataRepository
from echofs.observability.http import metrics_middleware, metrics_routes
from echofs.observability.metrics import untrack
from echofs.observability.state import track_master
from echofs.s3.endpoint import serve_s3
from echofs.s3.server import S3Server
from echofs.serving.middleware import error_middleware
from echofs.serving.transfer_coding import transfer_coding_middleware
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
        self.metadata_disk = MetadataDisk.of(repo.engine, settings.metadata_space_reserve)
        self.space = StorageSpace(registry, self.metadata_disk)
        self.chunk_io = ChunkIO(registry, write_timeout=settings.write_timeout,
                                read_timeout=settings.read_timeout,
                                hedge_min_delay=settings.read_hedge_min_delay,
                                hedge_max_delay=settings.read_hedge_max_delay,
                                chain_hop_timeout=settings.chain_hop_timeout)
        self.replicator = Replicator(repo, registry, self.chunk_io,
                                     replication_factor=settings.replication_factor,
                                     interval=settings.replication_interval,
                                     orphan_after=settings.replication_orphan_after)
        # One placement for writers and the replicator: they ask the same object.
        self.placement = self.replicator.placement
        # Small chunks' bytes, written through by uploads, read by downloads.
        self.chunk_cache = ChunkCache(settings.chunk_cache_bytes)
        self.uploads = UploadPipeline(repo, self.placement, self.chunk_io, PipelineSettings(
            chunk_size=settings.chunk_size,
            pipeline_depth=settings.pipeline_depth,
            versions_kept=settings.versions_kept,
            max_upload_size=settings.max_upload_size,
            gc_grace=settings.gc_grace_under_pressure,
        ), self.chunk_cache, metadata_disk=self.metadata_disk)
        self.reader = ChunkReader(repo, registry, self.chunk_io, self.chunk_cache,
                                  read_ahead_bytes=settings.read_ahead_bytes)
        # Manifest cache and rate limits: in-process, or Redis shared by masters.
        self.cache = open_cache(settings)
        self.manifests = ManifestReader(repo, self.cache)
        self.collector = GarbageCollector(repo, registry, self.chunk_io,
                                          grace=settings.gc_grace, interval=settings.gc_interval,
                                          pressure_grace=settings.gc_grace_under_pressure,
                                          space=self.space)
        self.scrubber = Scrubber(repo, registry, interval=settings.scrub_interval,
                                 rate=settings.scrub_rate)
        self.sweeper = OrphanSweeper(repo, registry, self.chunk_io,
                                     interval=settings.sweep_interval)
        self.auth = AuthConfig.from_settings(settings)
        # Adaptive consistency: the local mode table, fed by the controller.
        self.modes = ModeTable(parse_mode(settings.default_mode))
        self.activity = WriteActivity()
        self.files = FileService(repo, self.uploads, VersionSources(self.manifests, repo, registry),
                                 self.reader, self.modes, self.activity,
                                 replicator=self.replicator, collector=self.collector)
        # Resumable uploads: sessions in the metadata store, parts through
        # the same pipeline, expired sessions' chunks left to the collector.
        self.upload_sessions = UploadSessionService(
            repo, self.files, self.reader, SessionSettings(
                lifetime=settings.upload_session_ttl,
                max_open_per_user=settings.upload_sessions_per_user,
                default_part_size=settings.upload_part_size,
                max_part_size=settings.max_upload_part_size,
                max_upload_size=settings.max_upload_size,
                versions_kept=settings.versions_kept, read_ahead=settings.read_ahead),
            collector=self.collector)
        self.session_expirer = SessionExpirer(repo, self.collector,
                                              interval=settings.upload_session_sweep_interval)
        self.controller_api = controller_api
        self.controller_link = None if controller is None else ControllerLink(
            controller, self.modes, registry, repo, self.activity,
            master_id=f"{socket.gethostname()}:{settings.port}:{os.getpid()}",
            replication_factor=settings.replication_factor, interval=settings.sample_interval)
        # S3 (echofs.s3): the same files, served on a port of its own.
        self.access_keys = AccessKeys(repo.access_keys, settings.jwt_secret,
                                      ttl=settings.auth_cache_seconds)
        self.s3 = S3Server(self.files, repo.buckets, self.access_keys,
                           accounts=not self.auth.open, region=settings.s3_region,
                           domains=settings.s3_domains, max_size=settings.max_upload_size,
                           read_ahead=settings.read_ahead, cache=self.cache,
                           per_minute=settings.rate_limit_per_minute,
                           sessions=self.upload_sessions)
        self.s3_port: int | None = None  # bound once started; None: not served
        self._running = AsyncExitStack()

    async def start(self) -> None:
        async with AsyncExitStack() as stack:
            await self.cache.start()
            stack.push_async_callback(self.cache.close)
            track_master(self)
            stack.callback(untrack, self)
            for daemon in (self.collector, self.replicator, self.scrubber, self.sweeper,
                           self.controller_link, self.session_expirer):
                if daemon is not None:
                    daemon.start()
                    stack.push_async_callback(daemon.stop)
            # Stopped first: batches of claims and commits still queued finish
            # while the daemons and the store are still there.
            stack.push_async_callback(self.uploads.close)
            self.s3_port = await serve_s3(stack, self.s3.app(), self.settings)
            # Started: from here on, stop() undoes it all.
            self._running = stack.pop_all()

    async def stop(self) -> None:
        await self._running.aclose()

    def build_app(self) -> web.Application:
        auth = AuthAPI(self.repo.users, self.auth, self.cache)
        middlewares = [error_middleware, metrics_middleware, transfer_coding_middleware,
                       auth.middleware]
        if self.settings.rate_limit_per_minute > 0:
            middlewares.append(rate_limit_middleware(self.cache,
                                                     self.settings.rate_limit_per_minute))
        app = web.Application(middlewares=middlewares,
                              client_max_size=self.settings.max_upload_size + _BODY_SLACK)
        app.add_routes(FilesAPI(self.files, self.settings).routes())
        app.add_routes(UploadSessionsAPI(self.upload_sessions).routes())
        app.add_routes(auth.routes())
        app.add_routes(self.access_keys.routes())
        app.cleanup_ctx.append(auth.hashing_threads)
        app.add_routes(metrics_routes())
        app.add_routes(web_ui_routes())  # the web UI at / (echofs/web/)
        app.add_routes(HealthAPI(
            self.role_name, self.settings.replication_factor, self.repo, self.registry,
            self.replicator, self.scrubber, self.reader, self.cache, self.manifests,
            self.modes, self.files, self.controller_link,
            storage=StorageLayout(shared_disk=self.settings.embedded,
                                  local_workers=self.settings.workers
                                  if self.settings.embedded else 0,
                                  gc_grace=self.settings.gc_grace,
                                  gc_pressure_grace=self.settings.gc_grace_under_pressure),
            space=self.space, s3_port=self.s3_port).routes())
        document = openapi_document()

        async def openapi(request: web.Request) -> web.Response:
            return web.json_response(document)

        app.add_routes([web.get("/api/v1/openapi.json", openapi)])
        if self.controller_api is not None:
            # Controller in this process: its API is served here directly.
            app.add_routes(self.controller_api.routes(CONSISTENCY_PREFIX, CONSISTENCY_PREFIX))
        elif self.settings.controller_rest_url:
            app.add_routes(ConsistencyProxy(self.settings.controller_rest_url).routes())
        return app
