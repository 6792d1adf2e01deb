"""How a master talks to a worker: one interface, local or remote.

The master's pipelines only ever see :class:`WorkerClient`. The embedded node
hands them :class:`LocalWorkerClient` (direct calls into a
:class:`~echofs.worker.service.WorkerService` in the same process); a cluster
hands them a gRPC client with the same methods. Domain code never asks which.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from echofs.core.errors import Unavailable
from echofs.core.vocabulary import Verdict
from echofs.core.worker_status import WorkerStatus
from echofs.worker.service import WorkerService


class ChainUnsupported(Exception):
    """The worker cannot head a write pipeline (in-process, or too old to
    know ``PutChunkChain``): send to each target directly."""


class HopNotReached(Unavailable):
    """A write pipeline never got the frame to this hop (a hop before it
    failed): the copy may still be sent there directly."""


@dataclass(frozen=True, slots=True)
class HopOutcome:
    """One hop's answer in a write pipeline: ``error`` is None when its copy
    is durable."""

    worker_id: str
    error: Exception | None


class WorkerClient(abc.ABC):
    worker_id: str
    # Whether this worker can head a write pipeline (put_chunk_chain), and the
    # address its peers reach it at as a downstream hop. In-process workers
    # cannot: the embedded node has no network egress to save.
    supports_chain: bool = False
    chain_address: str | None = None

    @abc.abstractmethod
    async def put_chunk(self, chunk_id: str, frame: bytes) -> None: ...

    async def put_chunk_chain(self, chunk_id: str, frame: bytes,
                              downstream: Sequence[tuple[str, str]],
                              hop_timeout: float) -> AsyncIterator[HopOutcome]:
        """Store the frame here and relay it down ``downstream`` ((worker id,
        address) pairs), yielding one outcome per hop as each answers. A hop
        too old to relay answers :class:`ChainUnsupported`."""
        raise ChainUnsupported(f"worker {self.worker_id} cannot head a write pipeline")
        yield  # an async generator, as every implementation is

    @abc.abstractmethod
    async def get_chunk(self, chunk_id: str) -> bytes: ...

    @abc.abstractmethod
    async def verify_chunk(self, chunk_id: str) -> Verdict: ...

    @abc.abstractmethod
    async def delete_chunk(self, chunk_id: str) -> bool: ...

    @abc.abstractmethod
    async def has_chunk(self, chunk_id: str) -> bool: ...

    @abc.abstractmethod
    def list_chunks(self) -> AsyncIterator[str]: ...

    @abc.abstractmethod
    async def status(self) -> WorkerStatus: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class LocalWorkerClient(WorkerClient):
    def __init__(self, service: WorkerService) -> None:
        self.worker_id = service.worker_id
        self._service = service

    async def put_chunk(self, chunk_id: str, frame: bytes) -> None:
        await self._service.put_chunk(chunk_id, frame)

    async def get_chunk(self, chunk_id: str) -> bytes:
        return await self._service.get_chunk(chunk_id)

    async def verify_chunk(self, chunk_id: str) -> Verdict:
        return await self._service.verify_chunk(chunk_id)

    async def delete_chunk(self, chunk_id: str) -> bool:
        return await self._service.delete_chunk(chunk_id)

    async def has_chunk(self, chunk_id: str) -> bool:
        return await self._service.has_chunk(chunk_id)

    def list_chunks(self) -> AsyncIterator[str]:
        return self._service.list_chunks()

    async def status(self) -> WorkerStatus:
        return await self._service.status()
