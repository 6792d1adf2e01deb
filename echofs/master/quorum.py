"""Waiting for a write quorum, and the copies still running after it.

A strong write acknowledges a chunk once a majority of its targets stored it
(:func:`until_quorum`); it does not wait out a target that hangs. Copies
still in flight then get a short grace; what is still running after that is
handed to :class:`Stragglers`, which records each copy that lands.

Nor does the wait sit out a target the master has meanwhile stopped hearing
from (:class:`Substitutes`): a put to a worker whose heartbeats stopped is
cancelled and the copy sent to a stand-in — the next live worker in the
chunk's ranking, where a write begun a moment later would have been placed
anyway. Without it, a write begun in the second before a partition is
noticed waits the whole write timeout for a cut target and fails for want
of a quorum, although enough live workers were there all along.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from echofs.metadata.repository import MetadataRepository

log = logging.getLogger(__name__)

# Once a strong write's quorum is reached, its other copies get as long again
# as quorum took, within these bounds, before they are left to the background:
# enough for a healthy target a little behind, far below the write timeout a
# hung one would cost.
GRACE_MIN = 0.05
GRACE_MAX = 1.0

# Chunk puts in flight, each with the worker it writes to.
Puts = dict[asyncio.Task[None], str]


# How often a quorum wait looks at the membership for targets given up on.
POLL_INTERVAL = 0.05


@dataclass
class Substitutes:
    """Which targets a quorum wait stops waiting for, and who stands in.

    ``given_up(worker_id)`` says the master no longer hears from the worker
    (the registry's view, polled every ``poll`` seconds while the wait lasts);
    ``stand_in(worker_id)`` starts the replacement put(s) — none when no live
    worker is left to take the copy, in which case the wait goes on for the
    original. ``replaced`` records each target given up on and its stand-in.
    """

    given_up: Callable[[str], bool]
    stand_in: Callable[[str], Puts]
    poll: float = POLL_INTERVAL
    replaced: dict[str, str] = field(default_factory=dict)
    # Targets given up on that no one could stand in for: kept waiting.
    _kept: set[str] = field(default_factory=set)

    def swap(self, puts: Puts, pending: set[asyncio.Task[None]]) -> None:
        """Cancel the pending puts to workers given up on and start their
        stand-ins (added to ``puts`` and ``pending``)."""
        for task in list(pending):
            worker_id = puts[task]
            if worker_id in self._kept or worker_id in self.replaced \
                    or not self.given_up(worker_id):
                continue
            new = self.stand_in(worker_id)
            if not new:
                self._kept.add(worker_id)
                continue
            task.cancel()
            pending.discard(task)
            del puts[task]
            puts.update(new)
            pending.update(new)
            self.replaced[worker_id] = ", ".join(new.values())


async def until_quorum(puts: Puts, needed: int, substitutes: Substitutes | None = None
                        ) -> tuple[list[str], dict[str, BaseException], Puts]:
    """Wait until ``needed`` puts succeeded (or too many failed for that),
    then a short grace for the others.

    With ``substitutes``, a put to a worker given up on while quorum is not
    yet reached is cancelled and replaced by its stand-in's (``puts`` is
    updated in place: the caller can cancel whatever it holds).

    Returns the workers that acknowledged, those that failed (with why) and the
    puts still running.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    acked: list[str] = []
    errors: dict[str, BaseException] = {}
    pending = set(puts)

    def collect(done: set[asyncio.Task[None]]) -> None:
        for task in done:
            error = asyncio.CancelledError() if task.cancelled() else task.exception()
            if error is None:
                acked.append(puts[task])
            else:
                errors[puts[task]] = error

    poll = substitutes.poll if substitutes is not None else None
    while len(acked) < needed <= len(acked) + len(pending):
        if substitutes is not None:
            substitutes.swap(puts, pending)
        done, pending = await asyncio.wait(pending, timeout=poll,
                                           return_when=asyncio.FIRST_COMPLETED)
        collect(done)
    if pending and len(acked) >= needed:
        grace = min(max(loop.time() - started, GRACE_MIN), GRACE_MAX)
        done, pending = await asyncio.wait(pending, timeout=grace)
        collect(done)
    return acked, errors, {task: puts[task] for task in pending}


class Stragglers:
    """Puts still running after their chunk was acknowledged at quorum.

    Each is already covered by a durable replication intent; if it lands, the
    copy is recorded at once (the replicator's own copy later is idempotent).
    Each holds its chunk's frame, so only ``limit`` run at a time across all
    uploads: beyond that a put is cancelled and the replicator alone restores
    the copy. That keeps memory bounded while a target hangs until the write
    timeout.
    """

    def __init__(self, repo: MetadataRepository, *, limit: int) -> None:
        self.repo = repo
        self.limit = max(1, limit)
        self._running: set[asyncio.Task[None]] = set()
        self._recording: set[asyncio.Task[None]] = set()
        self.landed = 0
        self.cancelled = 0

    @property
    def running(self) -> int:
        return len(self._running)

    def adopt(self, chunk_id: str, puts: Puts) -> None:
        for task, worker_id in puts.items():
            if len(self._running) >= self.limit:
                task.cancel()
                self.cancelled += 1
                continue
            self._running.add(task)
            task.add_done_callback(functools.partial(self._finished, chunk_id, worker_id))

    def _finished(self, chunk_id: str, worker_id: str, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if task.cancelled() or task.exception() is not None:
            return  # the intent stands; the replicator will make the copy
        recording = asyncio.create_task(self._record(chunk_id, worker_id))
        self._recording.add(recording)
        recording.add_done_callback(self._recording.discard)

    async def _record(self, chunk_id: str, worker_id: str) -> None:
        try:
            await self.repo.add_replicas(chunk_id, [worker_id])
        except Exception:  # collected meanwhile, database away: the intent stands
            log.warning("could not record the late copy of chunk %s on %s",
                        chunk_id[:12], worker_id, exc_info=True)
            return
        self.landed += 1
