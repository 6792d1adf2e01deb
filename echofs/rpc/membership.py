"""Membership over gRPC: the master's service and the worker's link to it.

A worker registers (id, where to reach it) and then heartbeats its status
every interval. A master that restarted answers a heartbeat with
``known=False`` and the worker registers again, so membership rebuilds itself
with no state of its own on disk.

Several masters (sharing one PostgreSQL) each keep their own registry: a
worker is given all of them (``--master a:9080,b:9080``) and keeps one link,
with its own heartbeat, to each, so every master knows every worker
first-hand.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from grpclib.client import Channel

from echofs.master.membership import WorkerRegistry
from echofs.rpc.cluster_auth import send_cluster_token
from echofs.rpc.convert import status_from_msg, status_to_msg
from echofs.rpc.generated.echofs.v1 import (
    HeartbeatRequest,
    HeartbeatResponse,
    MembershipBase,
    MembershipStub,
    RegisterRequest,
    RegisterResponse,
)
from echofs.rpc.worker_client import GrpcWorkerClient, split_address
from echofs.worker.service import WorkerStatus

log = logging.getLogger(__name__)

WorkerUp = Callable[[str], Awaitable[None]]


class MembershipGrpcService(MembershipBase):
    """Master side: turns registrations into registry entries with a gRPC client."""

    def __init__(self, registry: WorkerRegistry, *, heartbeat_interval: float,
                 on_worker_up: WorkerUp, cluster_token: str | None = None) -> None:
        self.registry = registry
        self.cluster_token = cluster_token
        self.heartbeat_interval = heartbeat_interval
        self.on_worker_up = on_worker_up

    async def register(self, message: RegisterRequest) -> RegisterResponse:
        split_address(message.grpc_address)  # refuse garbage before using it
        client = self.registry.client(message.worker_id)
        if not (isinstance(client, GrpcWorkerClient)
                and client.address == message.grpc_address):
            client = GrpcWorkerClient(message.worker_id, message.grpc_address,
                                      cluster_token=self.cluster_token)
        # Registered again at the same address (a reply lost under load, a
        # restart on the same port): the channel we have reconnects by
        # itself, and replacing it would cut the chunk calls in flight on it.
        replaced = self.registry.register(
            client, address=message.grpc_address, http_address=message.http_address)
        if replaced is not None:
            await replaced.close()
        if message.status is not None:
            self.registry.heartbeat(message.worker_id, status_from_msg(message.status))
        log.info("worker %s registered from %s", message.worker_id, message.grpc_address)
        await self.on_worker_up(message.worker_id)
        return RegisterResponse(heartbeat_interval=self.heartbeat_interval)

    async def heartbeat(self, message: HeartbeatRequest) -> HeartbeatResponse:
        if self.registry.client(message.worker_id) is None:
            return HeartbeatResponse(known=False)
        was = self.registry.liveness(message.worker_id)
        if message.status is not None:
            self.registry.heartbeat(message.worker_id, status_from_msg(message.status))
        if was != "alive" and self.registry.liveness(message.worker_id) == "alive":
            log.info("worker %s is alive again", message.worker_id)
            await self.on_worker_up(message.worker_id)
        return HeartbeatResponse(known=True)


class MasterLink:
    """Worker side: registers with the master, then reports each heartbeat."""

    def __init__(self, master_address: str, *, worker_id: str, grpc_address: str,
                 http_address: str, cluster_token: str | None = None) -> None:
        host, port = split_address(master_address)
        self.master_address = master_address
        self._channel = send_cluster_token(Channel(host, port), cluster_token)
        self._stub = MembershipStub(self._channel)
        self.worker_id = worker_id
        self.grpc_address = grpc_address
        self.http_address = http_address
        self._registered = False
        self._reachable = True

    async def report(self, status: WorkerStatus) -> None:
        msg = status_to_msg(status)
        try:
            if not self._registered:
                await self._stub.register(RegisterRequest(
                    worker_id=self.worker_id, grpc_address=self.grpc_address,
                    http_address=self.http_address, status=msg), timeout=5)
                self._registered = True
                log.info("registered with master %s", self.master_address)
            else:
                reply = await self._stub.heartbeat(
                    HeartbeatRequest(worker_id=self.worker_id, status=msg), timeout=5)
                if not reply.known:
                    self._registered = False
                    log.info("master %s forgot us (restarted?); registering again",
                             self.master_address)
                    await self.report(status)
                    return
        except Exception as exc:  # refused, timed out, reset: all mean unreachable
            self._registered = False
            if self._reachable:  # say it once, not every second
                log.warning("master %s unreachable: %s", self.master_address, exc)
            self._reachable = False
            return
        if not self._reachable:
            log.info("master %s reachable again", self.master_address)
        self._reachable = True

    def close(self) -> None:
        self._channel.close()
