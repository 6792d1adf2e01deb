"""Password hashing off the event loop, a few at a time, with a short queue.

Argon2 takes tens of milliseconds of CPU and 19 MiB per hash. On the default
executor a login flood would take every thread the rest of the master shares
(health, file operations that use threads) and queue without end. Here hashes
run on threads of their own, at most ``concurrency`` at once; up to ``queue``
more logins wait for a turn, at most ``max_wait`` seconds; any other is
answered at once with 429 ``auth_busy`` and ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from echofs.core.errors import AuthBusy

_T = TypeVar("_T")
MAX_WAIT = 2.0  # seconds a login may wait for a hashing thread
_RETRY_AFTER = 1


class PasswordHashing:
    def __init__(self, concurrency: int, queue: int, *, max_wait: float = MAX_WAIT) -> None:
        if concurrency < 1 or queue < 0:
            raise ValueError("password hashing needs concurrency >= 1 and queue >= 0")
        self.concurrency = concurrency
        self.admit_at_most = concurrency + queue
        self.max_wait = max_wait
        self._executor = ThreadPoolExecutor(max_workers=concurrency,
                                            thread_name_prefix="password-hash")
        self._slots = asyncio.Semaphore(concurrency)
        self._admitted = 0

    @property
    def admitted(self) -> int:
        """Logins hashing or waiting to, now."""
        return self._admitted

    def _busy(self) -> AuthBusy:
        return AuthBusy("too many logins in progress on this server; retry in "
                        f"{_RETRY_AFTER}s", retry_after=_RETRY_AFTER)

    async def run(self, work: Callable[..., _T], *args: object) -> _T:
        if self._admitted >= self.admit_at_most:
            raise self._busy()
        self._admitted += 1
        try:
            try:
                async with asyncio.timeout(self.max_wait):
                    await self._slots.acquire()
            except TimeoutError:
                raise self._busy() from None
            return await self._on_thread(work, *args)
        finally:
            self._admitted -= 1

    async def _on_thread(self, work: Callable[..., _T], *args: object) -> _T:
        loop = asyncio.get_running_loop()
        try:
            future: Future[_T] = self._executor.submit(work, *args)
        except BaseException:
            self._slots.release()
            raise

        # The slot is given back when the hash is really done, not when the
        # request stops waiting for it (a client that hangs up mid-login must
        # not let another hash start beside the one still running).
        def release(_: Future[_T]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed at shutdown
                loop.call_soon_threadsafe(self._slots.release)

        future.add_done_callback(release)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
