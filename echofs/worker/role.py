"""The worker role as its own process: a chunk store served over gRPC, an HTTP
health endpoint, and links to the master(s) it reports to.

Start order: the store, the links (channels connect lazily), gRPC and HTTP,
then the heartbeats, so a master hears of this worker only once it can be
reached. Stop unwinds it: heartbeats first, then HTTP and gRPC, the links,
and the store last.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from pathlib import Path

from aiohttp import web

from echofs.config import Settings
from echofs.core.vocabulary import Role
from echofs.rpc.chain_relay import PeerChannels
from echofs.rpc.membership_link import MasterLink
from echofs.rpc.worker_server import WorkerGrpcService
from echofs.rpc.worker_transport import ChunkServer
from echofs.serving.endpoints import role_app, role_grpc_server, serving
from echofs.serving.http_protocol import HttpLimits
from echofs.serving.lifecycle import Lifecycle
from echofs.worker.heartbeat import Heartbeat
from echofs.worker.service import WorkerService
from echofs.worker.stores import open_store
from echofs.worker.stores.delayed import with_injected_faults

log = logging.getLogger(__name__)


class WorkerRole(Lifecycle):
    def __init__(self, settings: Settings) -> None:
        assert settings.worker_id
        self.settings = settings
        self.worker_id = settings.worker_id
        spec = settings.store or f"local:{Path(settings.data_dir) / 'workers' / self.worker_id}"
        store = open_store(
            spec, worker_id=self.worker_id, s3_bucket=settings.s3_bucket,
            s3_endpoint_url=settings.s3_endpoint_url, aws_region=settings.aws_region,
            reserve=settings.store_space_reserve)
        self.service = WorkerService(self.worker_id, with_injected_faults(store, settings))

    async def _start(self, stack: AsyncExitStack) -> None:
        s = self.settings
        await self.service.open()
        stack.push_async_callback(self.service.close)
        links = [MasterLink(
            address, worker_id=self.worker_id,
            grpc_address=f"{s.public_host}:{s.advertise_grpc_port or s.worker_grpc_port}",
            http_address=f"{s.public_host}:{s.http_port}",
            cluster_token=s.cluster_token,
        ) for address in s.master_addresses]
        for link in links:
            stack.callback(link.close)
        # Channels to the other workers (the write pipeline's relays), closed
        # after the gRPC server stops serving the calls that use them.
        grpc_service = WorkerGrpcService(self.service, PeerChannels(s.cluster_token))
        stack.callback(grpc_service.close)
        await stack.enter_async_context(serving(
            role_app([web.get("/health", self.health)]), host=s.host, http_port=s.http_port,
            grpc=role_grpc_server([grpc_service], s.cluster_token,
                                  server_type=ChunkServer),
            grpc_port=s.worker_grpc_port, limits=HttpLimits.from_settings(s)))
        # Every master keeps its own registry, so each gets the heartbeats,
        # on a beat of its own: a slow or dead master never delays the others.
        heartbeats = [Heartbeat(self.service, link.report, interval=s.heartbeat_interval)
                      for link in links]
        for heartbeat in heartbeats:
            stack.push_async_callback(heartbeat.stop)
        await asyncio.gather(*(heartbeat.run_once() for heartbeat in heartbeats))
        for heartbeat in heartbeats:
            heartbeat.start()
        log.info("worker %s serving %s on gRPC %s:%d, HTTP %s:%d; master %s",
                 self.worker_id, self.service.store.description, s.host, s.worker_grpc_port,
                 s.host, s.http_port, s.master)

    async def health(self, request: web.Request) -> web.Response:
        status = await self.service.status()
        return web.json_response({
            "status": "ok", "role": Role.WORKER, "worker_id": self.worker_id,
            "store": status.store, "chunk_count": status.usage.chunk_count,
            "bytes_stored": status.usage.bytes_stored,
            "capacity_bytes": status.usage.capacity_bytes,
            "free_bytes": status.usage.free_bytes,
            "reserve_bytes": status.usage.reserve_bytes, "space": status.usage.space,
            "inflight": status.inflight,
        })
