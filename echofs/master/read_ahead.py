"""Chunk reads started ahead of the one a download is sending.

A download that fetched one chunk at a time would leave every worker idle
while the master writes to the client, and the client idle while a worker
answers. Reads are started ahead instead, in a window bounded by chunks and
by bytes, and their answers are handed on strictly in order.

The bounds keep the master's memory flat for any file size: at most
``max_bytes`` of chunks are being fetched or waiting, plus the one the
consumer holds (a single chunk larger than ``max_bytes`` is still read,
alone). The window is pulled, not pushed: a new read starts only when the
consumer asks for the next chunk, so a client that reads slowly (the HTTP
response's write waiting on the socket) stops further fetches until it
catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from echofs.core.manifest import ChunkRef

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReadAheadWindow:
    """How far ahead of the chunk being sent reads may run."""

    max_chunks: int
    max_bytes: int

    def admits(self, chunks: int, nbytes: int, size: int) -> bool:
        """May a read of ``size`` bytes start beside ``chunks`` reads of
        ``nbytes`` already running or waiting? The first always may."""
        if chunks == 0:
            return True
        return chunks < self.max_chunks and nbytes + size <= self.max_bytes


async def read_ahead(refs: Iterable[ChunkRef], fetch: Callable[[ChunkRef], Awaitable[T]],
                     window: ReadAheadWindow) -> AsyncIterator[tuple[ChunkRef, T]]:
    """``fetch(ref)`` for each of ``refs``, run ahead within ``window``,
    yielded in order. Closing the iterator cancels the reads still running."""
    pending: deque[tuple[ChunkRef, asyncio.Task[T]]] = deque()
    queue = iter(refs)
    upcoming = next(queue, None)
    in_flight = 0  # bytes of the reads in ``pending``

    def fill() -> None:
        nonlocal upcoming, in_flight
        while upcoming is not None and window.admits(len(pending), in_flight, upcoming.size):
            pending.append((upcoming, asyncio.ensure_future(fetch(upcoming))))
            in_flight += upcoming.size
            upcoming = next(queue, None)

    try:
        fill()
        while pending:
            ref, task = pending[0]
            result = await task
            pending.popleft()
            in_flight -= ref.size
            fill()
            yield ref, result
    finally:
        for _, task in pending:
            task.cancel()
        for _, task in pending:
            with contextlib.suppress(BaseException):
                await task
