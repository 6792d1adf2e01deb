"""The chunk store contract every backend honours.

A store maps chunk ids to opaque frames (see ``echofs.core.chunk_codec``). It
does not interpret frames; verification belongs to the worker service. The
contract, checked by ``tests/unit/worker/stores/test_contract.py`` for every
implementation:

- ``put`` is durable when it returns (the bytes survive a crash) and atomic
  (a reader sees the old state or the whole new frame, never a prefix);
  putting an id that exists is harmless.
- ``get`` of an absent id raises :class:`~echofs.core.errors.ChunkMissing`.
- ``delete`` of an absent id returns False and is not an error.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator

from echofs.core.worker_status import StoreUsage


class ChunkStore(abc.ABC):
    """Where one worker keeps its chunk frames."""

    description: str = "chunk store"

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Prepare the store (create folders, count what is there)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    @abc.abstractmethod
    async def put(self, chunk_id: str, frame: bytes) -> None: ...

    @abc.abstractmethod
    async def get(self, chunk_id: str) -> bytes: ...

    async def reread(self, chunk_id: str) -> bytes:
        """Read a stored copy for the scrubber: what :meth:`get` returns, after
        any further check that the copy is still on the medium which a store
        skips on the hot read path."""
        return await self.get(chunk_id)

    @abc.abstractmethod
    async def delete(self, chunk_id: str) -> bool: ...

    @abc.abstractmethod
    async def has(self, chunk_id: str) -> bool: ...

    @abc.abstractmethod
    def list_ids(self) -> AsyncIterator[str]: ...

    @abc.abstractmethod
    async def usage(self) -> StoreUsage: ...
