"""The worker role as its own process: a chunk store served over gRPC, an HTTP
health endpoint, and a link to the master it reports to."""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web
from grpclib.server import Server

from echofs.config import Settings
from echofs.master.http_errors import error_middleware
from echofs.rpc.membership import MasterLink
from echofs.rpc.worker_server import WorkerGrpcService
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
        self.service = WorkerService(self.worker_id, open_store(spec))
        self._grpc: Server | None = None
        self._http: web.AppRunner | None = None
        self._heartbeat: Heartbeat | None = None
        self._link: MasterLink | None = None

    async def start(self) -> None:
        s = self.settings
        await self.service.open()
        self._grpc = Server([WorkerGrpcService(self.service)])
        await self._grpc.start(s.host, s.worker_grpc_port)
        app = web.Application(middlewares=[error_middleware])
        app.add_routes([web.get("/health", self.health)])
        self._http = web.AppRunner(app, access_log=None)
        await self._http.setup()
        await web.TCPSite(self._http, s.host, s.http_port, reuse_address=True).start()
        self._link = MasterLink(
            s.master, worker_id=self.worker_id,
            grpc_address=f"{s.public_host}:{s.worker_grpc_port}",
            http_address=f"{s.public_host}:{s.http_port}",
        )
        self._heartbeat = Heartbeat(self.service, self._link.report,
                                    interval=s.heartbeat_interval)
        await self._heartbeat.run_once()
        self._heartbeat.start()
        log.info("worker %s serving %s on gRPC %s:%d, HTTP %s:%d; master %s",
                 self.worker_id, self.service.store.description, s.host, s.worker_grpc_port,
                 s.host, s.http_port, s.master)

    async def stop(self) -> None:
        if self._heartbeat is not None:
            await self._heartbeat.stop()
        if self._http is not None:
            await self._http.cleanup()
        if self._grpc is not None:
            self._grpc.close()
            await self._grpc.wait_closed()
        if self._link is not None:
            self._link.close()
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
