"""Group commit: concurrent requests for one kind of metadata write share a
transaction.

SQLite serialises writers and fsyncs every commit, so one transaction per
request would make the metadata store's commit latency the speed limit of
every upload. Instead, requests that arrive while a transaction runs wait
and go together in the next one: under load batches grow by themselves, and
a lone request waits for nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


class GroupCommit(Generic[_Item, _Result]):
    """``run`` commits a batch in one transaction and returns, in order, each
    item's result or the exception that item alone gets; if ``run`` raises,
    every item of the batch gets that exception."""

    def __init__(self, run: Callable[[list[_Item]], Awaitable[Sequence[_Result | Exception]]],
                 *, max_batch: int) -> None:
        self._run = run
        self.max_batch = max_batch
        self._pending: list[tuple[_Item, asyncio.Future[_Result]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: _Item) -> _Result:
        future: asyncio.Future[_Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[:self.max_batch]
            self._pending = self._pending[self.max_batch:]
            try:
                outcomes = await self._run([item for item, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # its caller went away
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    async def close(self) -> None:
        """Wait for the batches already submitted to finish (shutdown); a
        failed run was already handed to its waiters."""
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher
