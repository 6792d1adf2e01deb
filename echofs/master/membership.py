"""Which workers exist, which are alive, and how fast each answers.

Workers report in with heartbeats (status: capacity, load, chunk count). A
worker is ``alive`` while heartbeats arrive, ``suspect`` after
``suspect_after`` seconds of silence or repeated failed calls, and ``dead``
after ``dead_after`` (:class:`~echofs.core.vocabulary.Liveness`). Which of them
own placements is decided in :mod:`echofs.master.placement`; reads try live
replicas first, fastest (lowest smoothed RTT) first.

Apart from liveness, each worker's last heartbeat tells how much room its
store has (:class:`~echofs.core.space.SpaceState`): a ``full`` worker is
alive, serves reads and deletes, and takes no new chunks; a ``low`` one
makes the collector give deleted data back early.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from echofs.core.space import SpaceState
from echofs.core.vocabulary import Liveness
from echofs.core.worker_status import WorkerStatus
from echofs.worker.client import WorkerClient

# Smoothing of observed call latency (EWMA weight of the newest sample).
_RTT_ALPHA = 0.2
# Consecutive failed calls after which a worker is treated as suspect even if
# its heartbeats still arrive (its data path is broken). They count only while
# the last one is recent (within ``suspect_after``): nothing calls a suspect
# worker, so without this a healed worker would stay suspect for good.
_FAILURES_SUSPECT = 3
# The write path stops waiting on a worker silent for this share of
# ``suspect_after``: a put to it gets a stand-in (see quorum.Substitutes)
# before the worker is formally suspect. Heartbeats come several times per
# ``suspect_after``, so half of it missed is already a strong sign; nothing
# else changes for the worker (it is not marked anything).
_WRITE_PATIENCE = 0.5
# Reads try replicas in this order of their holder's liveness.
_READ_RANK = {Liveness.ALIVE: 0, Liveness.SUSPECT: 1, Liveness.DEAD: 2, Liveness.UNKNOWN: 3}


@dataclass
class WorkerState:
    # None for a worker we know of (it holds replicas) but have not heard
    # from since this master started.
    client: WorkerClient | None
    registered_at: float
    last_heartbeat: float
    status: WorkerStatus | None = None
    rtt: float | None = None
    consecutive_failures: int = 0
    last_failure: float = 0.0
    total_failures: int = 0
    total_calls: int = 0
    extra: dict[str, object] = field(default_factory=dict)


class WorkerRegistry:
    def __init__(self, *, suspect_after: float, dead_after: float) -> None:
        self.suspect_after = suspect_after
        self.dead_after = dead_after
        self._workers: dict[str, WorkerState] = {}

    def register(self, client: WorkerClient, **extra: object) -> WorkerClient | None:
        """Add a worker, or give a known one a new client (it restarted);
        returns the replaced client, for the caller to close."""
        now = time.monotonic()
        known = self._workers.get(client.worker_id)
        if known is None:
            self._workers[client.worker_id] = WorkerState(client, now, now, extra=dict(extra))
            return None
        # Keep its RTT and failure history; reset what the restart changed.
        replaced = known.client if known.client not in (None, client) else None
        known.client = client
        known.last_heartbeat = now
        known.consecutive_failures = 0
        known.extra.update(extra)
        return replaced

    def expect(self, worker_ids: Iterable[str]) -> None:
        """Workers known to hold data but not yet heard from (a master that
        restarted): they get the usual timeouts to register before they are
        declared dead and their chunks re-homed."""
        now = time.monotonic()
        for worker_id in worker_ids:
            self._workers.setdefault(worker_id, WorkerState(None, now, now))

    def heartbeat(self, worker_id: str, status: WorkerStatus) -> None:
        state = self._workers[worker_id]
        state.last_heartbeat = time.monotonic()
        state.status = status

    def client(self, worker_id: str) -> WorkerClient | None:
        state = self._workers.get(worker_id)
        return state.client if state else None

    def liveness(self, worker_id: str, now: float | None = None) -> Liveness:
        state = self._workers.get(worker_id)
        if state is None:
            return Liveness.UNKNOWN
        now = time.monotonic() if now is None else now
        silence = now - state.last_heartbeat
        if silence >= self.dead_after:
            return Liveness.DEAD
        failing = (state.consecutive_failures >= _FAILURES_SUSPECT
                   and now - state.last_failure < self.suspect_after)
        if state.client is None or silence >= self.suspect_after or failing:
            return Liveness.SUSPECT
        return Liveness.ALIVE

    def unresponsive(self, worker_id: str, now: float | None = None) -> bool:
        """Should a write in progress stop waiting for this worker? Yes once it
        is not alive, or its heartbeats have been missing for part of
        ``suspect_after`` already: the master's own failure detection, used
        by the write path at once rather than after the worker turns suspect
        (or the controller changes a file's mode)."""
        state = self._workers.get(worker_id)
        now = time.monotonic() if now is None else now
        if state is None or self.liveness(worker_id, now) is not Liveness.ALIVE:
            return True
        return now - state.last_heartbeat >= _WRITE_PATIENCE * self.suspect_after

    def all_ids(self) -> list[str]:
        return sorted(self._workers)

    def live_ids(self) -> list[str]:
        now = time.monotonic()
        return [w for w in sorted(self._workers) if self.liveness(w, now) is Liveness.ALIVE]

    def placeable_ids(self) -> list[str]:
        """Workers that still own their placements: alive or suspect. A dead
        worker's chunks get new homes (and are re-replicated there)."""
        now = time.monotonic()
        return [w for w in sorted(self._workers) if self.liveness(w, now) is not Liveness.DEAD]

    def dead_ids(self) -> list[str]:
        now = time.monotonic()
        return [w for w in sorted(self._workers) if self.liveness(w, now) is Liveness.DEAD]

    def space(self, worker_id: str) -> SpaceState:
        """How much room the worker's store had at its last heartbeat."""
        state = self._workers.get(worker_id)
        if state is None or state.status is None:
            return SpaceState.UNKNOWN
        return state.status.usage.space

    def full_ids(self) -> list[str]:
        """Workers whose stores take no new chunks (out of room)."""
        return [w for w in sorted(self._workers) if self.space(w) is SpaceState.FULL]

    def short_of_space(self) -> bool:
        """Is any worker that is not dead low on space, or full?"""
        return any(self.space(w) in (SpaceState.LOW, SpaceState.FULL)
                   for w in self.placeable_ids())

    def clients(self) -> list[WorkerClient]:
        return [s.client for s in self._workers.values() if s.client is not None]

    def observe_success(self, worker_id: str, seconds: float) -> None:
        state = self._workers.get(worker_id)
        if state is None:
            return
        state.total_calls += 1
        state.consecutive_failures = 0
        state.rtt = seconds if state.rtt is None else (
            (1 - _RTT_ALPHA) * state.rtt + _RTT_ALPHA * seconds
        )

    def observe_failure(self, worker_id: str) -> None:
        state = self._workers.get(worker_id)
        if state is None:
            return
        state.total_calls += 1
        state.total_failures += 1
        state.consecutive_failures += 1
        state.last_failure = time.monotonic()

    def read_order(self, replicas: Iterable[str]) -> list[str]:
        """Replicas to try for a read: live ones by RTT, then the others."""
        now = time.monotonic()

        def key(worker_id: str) -> tuple[int, float, str]:
            state = self._workers.get(worker_id)
            rtt = state.rtt if state and state.rtt is not None else 0.0
            return _READ_RANK[self.liveness(worker_id, now)], rtt, worker_id

        return sorted(replicas, key=key)

    def snapshot(self) -> list[dict[str, object]]:
        """Every worker as ``GET /api/v1/workers/health`` reports it."""
        now_mono, now_wall = time.monotonic(), time.time()
        rows = []
        for worker_id in sorted(self._workers):
            state = self._workers[worker_id]
            status = state.status
            usage = status.usage if status else None
            rows.append({
                "id": worker_id,
                "state": self.liveness(worker_id, now_mono),
                "address": state.extra.get("address"),
                "http_address": state.extra.get("http_address"),
                "last_heartbeat": now_wall - (now_mono - state.last_heartbeat),
                "seconds_since_heartbeat": round(now_mono - state.last_heartbeat, 3),
                "store": status.store if status else None,
                "capacity_bytes": usage.capacity_bytes if usage else None,
                "free_bytes": usage.free_bytes if usage else None,
                "reserve_bytes": usage.reserve_bytes if usage else None,
                "space": self.space(worker_id),
                "chunk_count": usage.chunk_count if usage else None,
                "bytes_stored": usage.bytes_stored if usage else None,
                "inflight": status.inflight if status else None,
                "rtt_ms": round(state.rtt * 1000, 3) if state.rtt is not None else None,
                "calls": state.total_calls,
                "failures": state.total_failures,
            })
        return rows
