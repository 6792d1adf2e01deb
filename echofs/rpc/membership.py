"""Membership over gRPC, the master's side: registrations and heartbeats
become entries in the master's worker registry.

A worker registers (id, where to reach it) and then heartbeats its status
every interval (its side is :mod:`echofs.rpc.membership_link`). A master that
restarted answers a heartbeat with ``known=False`` and the worker registers
again, so membership rebuilds itself with no state of its own on disk.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from echofs.core.vocabulary import Liveness
from echofs.master.membership import WorkerRegistry
from echofs.rpc.convert import status_from_msg
from echofs.rpc.generated.echofs.v1 import (
    HeartbeatRequest,
    HeartbeatResponse,
    MembershipBase,
    RegisterRequest,
    RegisterResponse,
)
from echofs.rpc.worker_client import GrpcWorkerClient, split_address

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
        if (was != Liveness.ALIVE
                and self.registry.liveness(message.worker_id) == Liveness.ALIVE):
            log.info("worker %s is alive again", message.worker_id)
            await self.on_worker_up(message.worker_id)
        return HeartbeatResponse(known=True)
