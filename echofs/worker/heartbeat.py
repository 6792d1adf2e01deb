"""A worker's heartbeat: its status, reported to the master every interval.

In the embedded node the report is a direct call into the master's registry;
in a cluster it is the master's gRPC ``Heartbeat``. A worker whose status
cannot be read sends nothing, and the master's liveness timeouts do the rest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from echofs.core.worker_status import WorkerStatus
from echofs.daemon import Daemon
from echofs.worker.service import WorkerService


class Heartbeat(Daemon):
    def __init__(self, service: WorkerService, report: Callable[[WorkerStatus], Awaitable[None]],
                 *, interval: float) -> None:
        super().__init__(interval)
        self.name = f"heartbeat-{service.worker_id}"
        self.service = service
        self.report = report

    async def run_once(self) -> None:
        await self.report(await self.service.status())
