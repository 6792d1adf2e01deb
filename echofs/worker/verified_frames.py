"""Each frame is checked once per process, however many workers store it.

The embedded node runs its workers in the master's process: an upload's
frame, one immutable ``bytes`` object, is handed to every one of them, and
each used to hash it again (on the event loop for small frames, in a thread
for large ones) — three checks of the same bytes at RF=3, the third of a
small upload's CPU spent proving what the first proved.

The proof is kept by identity: an entry holds the frame object itself, so
while it is in the table no other object can take its ``id()``, and an
immutable object with that identity has exactly the bytes that were checked.
A frame received from the network is a new object and is checked as before;
a damaged copy of a checked frame is a different object and is checked (and
refused). Concurrent checks of one frame share one: the second caller waits
for the first's verdict. The table holds frames only up to a byte budget
(oldest dropped first), so it keeps at most a few chunks alive a little
longer than their upload would.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass

from echofs.core.chunk_codec import verify_frame

# Frames this small are verified on the event loop: a thread hop would cost
# more than hashing them.
VERIFY_ON_LOOP = 64 * 1024

# Room for the frames of the uploads in flight (chunks are 1 MiB by
# default); a frame larger than this is checked and not remembered.
BUDGET_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class _Check:
    frame: bytes  # held so that its id() cannot be reused while listed
    chunk_id: str
    verdict: asyncio.Future[None]  # of the loop that made the check


class VerifiedFrames:
    def __init__(self, budget_bytes: int = BUDGET_BYTES) -> None:
        self._budget = budget_bytes
        self._held = 0
        self._checks: OrderedDict[int, _Check] = OrderedDict()

    def __len__(self) -> int:
        return len(self._checks)

    async def verify(self, frame: bytes, chunk_id: str) -> None:
        """Return if ``frame`` is a sound frame of ``chunk_id``; raise
        :class:`~echofs.core.errors.CorruptChunk` (or ``ValueError``) as
        :func:`verify_frame` does otherwise."""
        key = id(frame)
        loop = asyncio.get_running_loop()
        known = self._checks.get(key)
        if (known is not None and known.frame is frame and known.chunk_id == chunk_id
                and known.verdict.get_loop() is loop):
            try:
                await asyncio.shield(known.verdict)
                return
            except asyncio.CancelledError:
                if not known.verdict.cancelled():
                    raise  # this caller was cancelled
                # The check waited on went with its cancelled caller: check here.
        if not isinstance(frame, bytes) or len(frame) > self._budget:
            # A mutable buffer could change after the check; an oversized
            # frame would push every other entry out.
            await _check(frame, chunk_id)
            return
        verdict: asyncio.Future[None] = loop.create_future()
        self._remember(key, _Check(frame, chunk_id, verdict))
        try:
            await _check(frame, chunk_id)
        except asyncio.CancelledError:
            self._forget(key, verdict)
            verdict.cancel()
            raise
        except Exception as exc:
            self._forget(key, verdict)
            verdict.set_exception(exc)
            verdict.exception()  # the waiters see it; no "never retrieved"
            raise
        verdict.set_result(None)

    def _remember(self, key: int, check: _Check) -> None:
        old = self._checks.pop(key, None)
        if old is not None:
            self._held -= len(old.frame)
        self._checks[key] = check
        self._held += len(check.frame)
        while self._held > self._budget:
            _, dropped = self._checks.popitem(last=False)
            self._held -= len(dropped.frame)

    def _forget(self, key: int, verdict: asyncio.Future[None]) -> None:
        check = self._checks.get(key)
        if check is not None and check.verdict is verdict:
            del self._checks[key]
            self._held -= len(check.frame)


async def _check(frame: bytes, chunk_id: str) -> None:
    if len(frame) < VERIFY_ON_LOOP:
        verify_frame(frame, chunk_id)
    else:
        await asyncio.to_thread(verify_frame, frame, chunk_id)


# One table per process: the point is to share it between the workers of
# one process. A check made on another event loop (tests run many in one
# process) is not trusted, only replaced.
PROCESS_FRAMES = VerifiedFrames()
