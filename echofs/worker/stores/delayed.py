"""Fault injection inside a worker's store: a slow disk.

:class:`DelayedStore` wraps any chunk store and makes each ``put`` take
``delay`` seconds longer (before the write, so the frame is durable only
when the delayed call returns, as on a disk that slow). Reads, deletes and
the rest are the wrapped store's, untouched.

It is off unless ``FAULT_STORE_PUT_DELAY_MS`` is set above zero on the
worker (:func:`with_injected_faults`); nothing but the chaos benchmark's
slow-disk scenario sets it. A fault proxy cannot play this part: it slows
the network path, whereas a slow disk slows the worker's acknowledgement
while its heartbeats and reads stay quick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from echofs.config import Settings
from echofs.core.worker_status import StoreUsage
from echofs.worker.stores.base import ChunkStore

log = logging.getLogger(__name__)


class DelayedStore(ChunkStore):
    """A chunk store whose writes take ``delay`` seconds longer."""

    def __init__(self, inner: ChunkStore, delay: float) -> None:
        if delay < 0:
            raise ValueError("a store delay cannot be negative")
        self.inner = inner
        self.delay = delay
        self.description = f"{inner.description} (+{delay * 1000:g} ms per write, injected)"
        self.delayed_puts = 0

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def put(self, chunk_id: str, frame: bytes) -> None:
        self.delayed_puts += 1
        await asyncio.sleep(self.delay)
        await self.inner.put(chunk_id, frame)

    async def get(self, chunk_id: str) -> bytes:
        return await self.inner.get(chunk_id)

    async def reread(self, chunk_id: str) -> bytes:
        return await self.inner.reread(chunk_id)

    async def delete(self, chunk_id: str) -> bool:
        return await self.inner.delete(chunk_id)

    async def has(self, chunk_id: str) -> bool:
        return await self.inner.has(chunk_id)

    def list_ids(self) -> AsyncIterator[str]:
        return self.inner.list_ids()

    async def usage(self) -> StoreUsage:
        return await self.inner.usage()


def with_injected_faults(store: ChunkStore, settings: Settings) -> ChunkStore:
    """The store as configured: itself, unless a fault is injected."""
    delay_ms = settings.fault_store_put_delay_ms
    if delay_ms <= 0:
        return store
    log.warning("fault injection: every chunk write on this worker is delayed %g ms", delay_ms)
    return DelayedStore(store, delay_ms / 1000)
