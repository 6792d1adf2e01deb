"""The base of every background loop (collector, replicator, heartbeats, ...).

A daemon runs ``run_once`` every ``interval`` seconds until stopped. An error
in one pass is logged and the loop goes on: a background job must never die
silently and leave the cluster without repair or collection. ``stop`` lets the
pass in progress finish (clean SIGTERM shutdown).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)


class Daemon(abc.ABC):
    name: str = "daemon"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self.passes = 0

    @abc.abstractmethod
    async def run_once(self) -> object: ...

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    def wake(self) -> None:
        """Run the next pass now instead of at the end of the interval."""
        self._wake.set()

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
                self.passes += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s pass failed; retrying in %.1fs", self.name, self.interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
