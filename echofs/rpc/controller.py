"""The controller over gRPC: its server face and the masters' client."""

from __future__ import annotations

from collections.abc import AsyncIterator

from grpclib import GRPCError
from grpclib.client import Channel

from echofs.controller.client import ControllerClient
from echofs.controller.service import ControllerService
from echofs.controller.signals import FileActivity, MasterReport, ModeUpdate
from echofs.core.consistency import WorkerHealth
from echofs.core.errors import Unavailable
from echofs.core.vocabulary import Liveness
from echofs.rpc.cluster_auth import send_cluster_token
from echofs.rpc.generated.echofs.v1 import (
    ControllerBase,
    ControllerStub,
    FileSignal,
    ModeEntry,
    SignalAck,
    SignalReport,
    WatchModesRequest,
    WorkerSignal,
)
from echofs.rpc.generated.echofs.v1 import ModeUpdate as ModeUpdateMsg
from echofs.rpc.worker_client import split_address


def report_to_msg(report: MasterReport) -> SignalReport:
    return SignalReport(
        master_id=report.master_id, interval_seconds=report.interval,
        replication_factor=report.replication_factor,
        workers=[WorkerSignal(worker_id=w.worker_id, liveness=w.liveness, rtt_ms=w.rtt_ms,
                              error_rate=w.error_rate) for w in report.workers],
        replication_queue_depth=report.queue_depth,
        replication_oldest_age_seconds=report.oldest_age,
        files=[FileSignal(object_id=f.object_id, write_rate=f.write_rate,
                          workers=list(f.workers)) for f in report.files],
    )


def _liveness(value: str) -> Liveness:
    # A state this controller does not know (a newer master's) counts as not
    # alive, as any string other than "alive" did before it was typed.
    try:
        return Liveness(value)
    except ValueError:
        return Liveness.UNKNOWN


def report_from_msg(msg: SignalReport) -> MasterReport:
    return MasterReport(
        master_id=msg.master_id, interval=msg.interval_seconds,
        replication_factor=msg.replication_factor or 3,
        workers=tuple(WorkerHealth(w.worker_id, _liveness(w.liveness), w.rtt_ms, w.error_rate)
                      for w in msg.workers),
        queue_depth=msg.replication_queue_depth, oldest_age=msg.replication_oldest_age_seconds,
        files=tuple(FileActivity(f.object_id, f.write_rate, tuple(f.workers))
                    for f in msg.files),
    )


def update_to_msg(update: ModeUpdate) -> ModeUpdateMsg:
    return ModeUpdateMsg(
        snapshot=update.snapshot, default_mode=update.default_mode,
        modes=[ModeEntry(object_id=k, mode=m, reason=r) for k, (m, r) in update.modes.items()],
    )


def update_from_msg(msg: ModeUpdateMsg) -> ModeUpdate:
    return ModeUpdate(msg.snapshot, {e.object_id: (e.mode, e.reason) for e in msg.modes},
                      msg.default_mode or "strong")


class ControllerGrpcService(ControllerBase):
    def __init__(self, service: ControllerService) -> None:
        self.service = service

    async def report_signals(self, message: SignalReport) -> SignalAck:
        await self.service.report(report_from_msg(message))
        return SignalAck()

    async def watch_modes(self, message: WatchModesRequest) -> AsyncIterator[ModeUpdateMsg]:
        async for update in self.service.watch():
            yield update_to_msg(update)


class GrpcControllerClient(ControllerClient):
    def __init__(self, address: str, cluster_token: str | None = None) -> None:
        host, port = split_address(address)
        self.address = address
        self._channel = send_cluster_token(Channel(host, port), cluster_token)
        self._stub = ControllerStub(self._channel)

    async def report(self, report: MasterReport) -> None:
        try:
            await self._stub.report_signals(report_to_msg(report), timeout=5)
        except GRPCError as exc:
            raise Unavailable(f"controller refused the report: {exc.message}") from exc

    async def watch(self, master_id: str) -> AsyncIterator[ModeUpdate]:
        async for msg in self._stub.watch_modes(WatchModesRequest(master_id=master_id)):
            yield update_from_msg(msg)

    async def close(self) -> None:
        self._channel.close()
