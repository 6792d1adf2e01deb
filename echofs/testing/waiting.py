"""Waiting for a distributed system to get somewhere, with a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(check: Callable[[], Awaitable[bool]], within: float, what: str,
                     *, every: float = 0.2) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(every)
    raise AssertionError(f"not within {within}s: {what}")
