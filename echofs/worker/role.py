"""The worker role as its own process: a chunk store served over gRPC, an HTTP
health endpoint, and links to the master(s) it reports to."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web
from grpclib.server import Server

from echofs.config import Settings
from echofs.observability.grpc import instrument_server
from echofs.observability.http import metrics_middleware, metrics_routes
from echofs.rpc.cluster_auth import require_cluster_token
from echofs.rpc.membership_link import MasterLink
from echofs.rpc.worker_server import WorkerGrpcService
from echofs.rpc.worker_transport import ChunkServer
from echofs.serving.middleware import error_middleware
from echofs.worker.heartbeat import Heartbeat
from echofs.worker.service import WorkerService
from echofs.worker.stores import open_store

log = logging.getLogger(__name__)


class WorkerRole:
    def __init__(self, settings: Settings) -> None:
        assert settings.worker_id
        self.settings = settings
        self.worker_id = settings.worker_id
        spec = settings.store or f"local:{Path(settings.data_dir) / 'workers' / self.worker_id}"
        self.service = WorkerService(self.worker_id, open_store(
            spec, worker_id=self.worker_id, s3_bucket=settings.s3_bucket,
            s3_endpoint_url=settings.s3_endpoint_url, aws_region=settings.aws_region))
        self._grpc: Server | None = None
        self._http: web.AppRunner | None = None
        self._links: list[MasterLink] = []
        self._heartbeats: list[Heartbeat] = []

    async def start(self) -> None:
        s = self.settings
        await self.service.open()
        grpc_server = require_cluster_token(
            instrument_server(ChunkServer([WorkerGrpcService(self.service)])), s.cluster_token)
        await grpc_server.start(s.host, s.worker_grpc_port)
        self._grpc = grpc_server
        app = web.Application(middlewares=[error_middleware, metrics_middleware])
        app.add_routes([web.get("/health", self.health), *metrics_routes()])
        self._http = web.AppRunner(app, access_log=None)
        await self._http.setup()
        await web.TCPSite(self._http, s.host, s.http_port, reuse_address=True).start()
        self._links = [MasterLink(
            address, worker_id=self.worker_id,
            grpc_address=f"{s.public_host}:{s.advertise_grpc_port or s.worker_grpc_port}",
            http_address=f"{s.public_host}:{s.http_port}",
            cluster_token=s.cluster_token,
        ) for address in s.master_addresses]
        # Every master keeps its own registry, so each gets the heartbeats,
        # on a beat of its own: a slow or dead master never delays the others.
        self._heartbeats = [Heartbeat(self.service, link.report, interval=s.heartbeat_interval)
                            for link in self._links]
        await asyncio.gather(*(heartbeat.run_once() for heartbeat in self._heartbeats))
        for heartbeat in self._heartbeats:
            heartbeat.start()
        log.info("worker %s serving %s on gRPC %s:%d, HTTP %s:%d; master %s",
                 self.worker_id, self.service.store.description, s.host, s.worker_grpc_port,
                 s.host, s.http_port, s.master)

    async def stop(self) -> None:
        for heartbeat in self._heartbeats:
            await heartbeat.stop()
        if self._http is not None:
            await self._http.cleanup()
        if self._grpc is not None:
            self._grpc.close()
            await self._grpc.wait_closed()
        for link in self._links:
            link.close()
        await self.service.close()

    async def health(self, request: web.Request) -> web.Response:
        status = await self.service.status()
        return web.json_response({
            "status": "ok", "role": "worker", "worker_id": self.worker_id,
            "store": status.store, "chunk_count": status.usage.chunk_count,
            "bytes_stored": status.usage.bytes_stored,
            "capacity_bytes": status.usage.capacity_bytes,
            "free_bytes": status.usage.free_bytes, "inflight": status.inflight,
        })
