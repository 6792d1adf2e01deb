"""The master's membership service: registrations become registry clients."""

from __future__ import annotations

from echofs.master.membership import WorkerRegistry
from echofs.rpc.generated.echofs.v1 import RegisterRequest
from echofs.rpc.membership import MembershipGrpcService


async def _worker_up(worker_id: str) -> None:
    return None


async def test_registering_again_at_the_same_address_keeps_the_channel():
    # A worker whose registration reply was lost registers again: the chunk
    # calls in flight on its channel must not be cut by a replacement.
    registry = WorkerRegistry(suspect_after=3, dead_after=10)
    service = MembershipGrpcService(registry, heartbeat_interval=1.0, on_worker_up=_worker_up)
    await service.register(RegisterRequest(worker_id="w1", grpc_address="127.0.0.1:7001",
                                           http_address="127.0.0.1:8001"))
    first = registry.client("w1")
    await service.register(RegisterRequest(worker_id="w1", grpc_address="127.0.0.1:7001",
                                           http_address="127.0.0.1:8001"))
    assert registry.client("w1") is first
    # A new address (restarted elsewhere) gets a new client.
    await service.register(RegisterRequest(worker_id="w1", grpc_address="127.0.0.1:7002",
                                           http_address="127.0.0.1:8002"))
    second = registry.client("w1")
    assert second is not first and second.address == "127.0.0.1:7002"
    await second.close()
