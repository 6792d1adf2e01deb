"""Membership over gRPC, the worker's side: one link to each master it
reports to, registering first and then carrying every heartbeat.

Several masters (sharing one PostgreSQL) each keep their own registry: a
worker is given all of them (``--master a:9080,b:9080``) and keeps one link,
with its own heartbeat, to each, so every master knows every worker
first-hand. A master that restarted answers ``known=False`` and the link
registers again (the master's side is :mod:`echofs.rpc.membership`).
"""

from __future__ import annotations

import logging

from grpclib.client import Channel

from echofs.core.worker_status import WorkerStatus
from echofs.rpc.cluster_auth import send_cluster_token
from echofs.rpc.convert import status_to_msg
from echofs.rpc.generated.echofs.v1 import HeartbeatRequest, MembershipStub, RegisterRequest
from echofs.rpc.worker_client import split_address

log = logging.getLogger(__name__)


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
