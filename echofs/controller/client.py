"""How a master talks to the controller: one interface, local or remote.

The embedded node hands its master a :class:`LocalControllerClient` (direct
calls into the in-process :class:`ControllerService`); a cluster master gets
the gRPC client with the same methods.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator

from echofs.controller.service import ControllerService
from echofs.controller.signals import MasterReport, ModeUpdate


class ControllerClient(abc.ABC):
    @abc.abstractmethod
    async def report(self, report: MasterReport) -> None: ...

    @abc.abstractmethod
    def watch(self, master_id: str) -> AsyncIterator[ModeUpdate]: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class LocalControllerClient(ControllerClient):
    def __init__(self, service: ControllerService) -> None:
        self.service = service

    async def report(self, report: MasterReport) -> None:
        await self.service.report(report)

    def watch(self, master_id: str) -> AsyncIterator[ModeUpdate]:
        return self.service.watch()
