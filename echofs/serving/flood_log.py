"""Logging what comes in floods: one line per window, not one per event.

An attack (or an unlucky limit) repeats the same event thousands of times a
second: every refused connection, every ``accept()`` that fails for want of a
file descriptor. A line each would bury the log and cost the event loop more
than the attack itself (one run wrote 175 MB of tracebacks in a minute).
:class:`ThrottledWarning` writes the first line of a window and counts the
rest into the next one; :func:`accept_exhaustion_logged` routes asyncio's
"``socket.accept()`` out of system resource" reports through one.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("echofs.http")

# One line per this many seconds per kind of event.
WINDOW = 10.0
# What asyncio's accept loop reports (and then retries a second later) when
# the process or the system is out of descriptors or buffers.
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

ExceptionHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


class ThrottledWarning:
    """A WARNING that is written at most once per :data:`WINDOW` seconds;
    the next line says how many were left out since the last one."""

    def __init__(self, logger: logging.Logger = log, *, window: float = WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._window = window
        self._clock = clock
        self._last: float | None = None
        self._left_out = 0

    def warn(self, message: str, *args: object) -> bool:
        """Log (``True``) or count (``False``) one occurrence."""
        now = self._clock()
        if self._last is not None and now - self._last < self._window:
            self._left_out += 1
            return False
        left_out, self._left_out = self._left_out, 0
        self._last = now
        if left_out:
            message += f" ({left_out} more since the last such line)"
        self._log.warning(message, *args)
        return True


class AcceptExhaustionLog:
    """A loop exception handler: ``accept()`` failing for want of resources
    becomes one throttled WARNING; everything else goes to the handler that
    was there before (or asyncio's default)."""

    def __init__(self, previous: ExceptionHandler | None,
                 warning: ThrottledWarning | None = None) -> None:
        self.previous = previous
        self.warning = warning or ThrottledWarning()

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if (isinstance(exc, OSError) and exc.errno in _EXHAUSTED
                and "accept" in str(context.get("message", ""))):
            self.warning.warn(
                "cannot accept new connections: %s; retrying every second. Raise the "
                "open-file limit (ulimit -n) or lower HTTP_MAX_CONNECTIONS",
                exc.strerror or exc)
            return
        if self.previous is not None:
            self.previous(loop, context)
        else:
            loop.default_exception_handler(context)


@contextmanager
def accept_exhaustion_logged(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """:class:`AcceptExhaustionLog` on ``loop`` for the block (once, however
    many servers of the process enter it)."""
    current = loop.get_exception_handler()
    if isinstance(current, AcceptExhaustionLog):
        yield
        return
    loop.set_exception_handler(AcceptExhaustionLog(current))
    try:
        yield
    finally:
        loop.set_exception_handler(current)
