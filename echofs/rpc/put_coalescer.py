"""Small chunk puts bound for one worker, sent together.

A 4 KiB upload at RF=3 costs the master three gRPC calls, and in a profile of
a busy master a unary call costs grpclib several times the CPU of moving the
4 KiB (stream set-up, headers, HPACK, the call's own task). Puts of small
frames therefore queue per worker and leave as one ``PutChunks`` call, in the
group-commit shape: at most :attr:`PutCoalescer.max_in_flight` calls on the
wire per worker, and whatever arrived meanwhile leaves in the next one
(bounded by :attr:`max_items` and :attr:`max_bytes`). An idle worker's first
put leaves at once (on the next loop turn), so nothing waits for company.

Each put still succeeds or fails on its own: the worker answers one result
per item, and a failed call fails only the puts it carried. Large frames go
alone (unary), as before: batching them saves nothing and delays them. A
worker too old to know ``PutChunks`` answers UNIMPLEMENTED; from then on it
gets unary puts only.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

# Frames up to this size are coalesced (a default small file's one frame).
SMALL_FRAME = 64 * 1024

Item = TypeVar("Item")


class BatchUnsupported(Exception):
    """The worker does not implement the batch call."""


class PutCoalescer(Generic[Item]):
    """Queues puts (opaque items of a given size) for one worker.

    ``send_batch`` sends several and returns one outcome per item (``None`` or
    the exception that item failed with); ``send_one`` sends one, unary.
    """

    def __init__(self,
                 send_batch: Callable[[Sequence[Item]], Awaitable[Sequence[Exception | None]]],
                 send_one: Callable[[Item], Awaitable[None]], *, max_items: int = 64,
                 max_bytes: int = 4 * 1024 * 1024, max_in_flight: int = 2) -> None:
        self._send_batch = send_batch
        self._send_one = send_one
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.max_in_flight = max_in_flight
        self._pending: deque[tuple[Item, int, asyncio.Future[None]]] = deque()
        self._in_flight = 0
        self._flush_scheduled = False
        self._batching = True
        self._tasks: set[asyncio.Task[None]] = set()

    async def put(self, item: Item, size: int) -> None:
        if not self._batching or size > SMALL_FRAME:
            await self._send_one(item)
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((item, size, done))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        await done

    def _flush(self) -> None:
        self._flush_scheduled = False
        while self._pending and self._in_flight < self.max_in_flight:
            batch = self._take()
            if not batch:
                return
            self._in_flight += 1
            # A batch belongs to no one request: it must not carry the request
            # id (or any other context) of whichever put happened to flush it.
            task = asyncio.get_running_loop().create_task(
                self._send(batch), context=contextvars.Context())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self) -> list[tuple[Item, int, asyncio.Future[None]]]:
        batch: list[tuple[Item, int, asyncio.Future[None]]] = []
        size = 0
        while self._pending and len(batch) < self.max_items:
            item, item_size, done = self._pending[0]
            if done.done():  # its caller gave up (timed out) while it waited
                self._pending.popleft()
                continue
            if batch and size + item_size > self.max_bytes:
                break
            self._pending.popleft()
            batch.append((item, item_size, done))
            size += item_size
        return batch

    async def _send(self, batch: list[tuple[Item, int, asyncio.Future[None]]]) -> None:
        try:
            try:
                outcomes = await self._send_batch([item for item, _, _ in batch])
            except BatchUnsupported:
                self._batching = False
                outcomes = await asyncio.gather(
                    *(self._send_one(item) for item, _, _ in batch), return_exceptions=True)
            if len(outcomes) != len(batch):
                raise RuntimeError(f"worker answered {len(outcomes)} results "
                                   f"for {len(batch)} puts")
        except Exception as exc:
            for *_, done in batch:
                if not done.done():
                    done.set_exception(exc)
        else:
            for (*_, done), outcome in zip(batch, outcomes, strict=True):
                if done.done():
                    continue
                if isinstance(outcome, BaseException):
                    done.set_exception(outcome)
                else:
                    done.set_result(None)
        finally:
            self._in_flight -= 1
            if self._pending and not self._flush_scheduled:
                self._flush()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for *_, done in self._pending:
            if not done.done():
                done.set_exception(ConnectionError("worker client closed"))
        self._pending.clear()
