"""Start and stop as one thing: whatever a start brought up is taken down by
its stop, in reverse, and a start that fails half-way takes down what it had
already brought up.

Each step of a start pushes its own undo onto an :class:`AsyncExitStack`
right after it succeeds, so start and stop can never drift apart the way two
hand-written mirror images do.
"""

from __future__ import annotations

import abc
from contextlib import AsyncExitStack
from typing import Self


class Lifecycle(abc.ABC):
    """``start`` runs :meth:`_start` on a fresh stack; ``stop`` unwinds it.

    Also an async context manager, so an owner can enter it on its own stack
    (``await stack.enter_async_context(role)``).
    """

    _stack: AsyncExitStack | None = None

    @abc.abstractmethod
    async def _start(self, stack: AsyncExitStack) -> None:
        """Bring everything up, pushing each thing's stop onto ``stack``."""

    async def start(self) -> None:
        async with AsyncExitStack() as stack:
            await self._start(stack)
            self._stack = stack.pop_all()

    async def stop(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
