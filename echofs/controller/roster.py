"""Workers that announced themselves to the controller (``POST /v1/register``,
the call the original's workers made to its controller).

A worker registers with its id and addresses and registers again to refresh
its entry, as a heartbeat: an entry is ``alive`` while refreshed within
``suspect_after`` seconds, ``suspect`` until ``dead_after`` and ``dead``
after it, and is forgotten once it has been dead as long again. Like the
masters' membership, the roster lives in memory and rebuilds itself from the
workers' next calls after a controller restart.

The controller's decisions come from what masters measure of the workers
(a worker alive by its own account may still be unreachable from every
master); the roster is the workers' own account beside it, shown with the
unhealthiness the controller currently holds for each.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from echofs.core.vocabulary import Liveness

# Entries kept at most (a flood of made-up ids must not grow memory).
MAX_WORKERS = 10_000


@dataclass
class RosterEntry:
    worker_id: str
    address: str
    http_address: str | None
    registered_at: float  # wall clock, first registration
    last_seen: float  # monotonic
    registrations: int = 1


class WorkerRoster:
    def __init__(self, *, suspect_after: float, dead_after: float,
                 max_workers: int = MAX_WORKERS) -> None:
        self.suspect_after = suspect_after
        self.dead_after = dead_after
        self.max_workers = max_workers
        self._entries: dict[str, RosterEntry] = {}

    def register(self, worker_id: str, address: str, http_address: str | None
                 ) -> tuple[RosterEntry, bool]:
        """Add or refresh a worker; True if it was not known (or was forgotten)."""
        self._forget_the_long_dead()
        now = time.monotonic()
        known = self._entries.get(worker_id)
        if known is None:
            if len(self._entries) >= self.max_workers:
                raise OverflowError(f"the roster holds its limit of {self.max_workers} workers")
            entry = RosterEntry(worker_id, address, http_address, time.time(), now)
            self._entries[worker_id] = entry
            return entry, True
        known.address, known.http_address = address, http_address
        known.last_seen = now
        known.registrations += 1
        return known, False

    def state(self, entry: RosterEntry, now: float | None = None) -> Liveness:
        silent = (time.monotonic() if now is None else now) - entry.last_seen
        if silent <= self.suspect_after:
            return Liveness.ALIVE
        return Liveness.SUSPECT if silent <= self.dead_after else Liveness.DEAD

    def entries(self) -> list[RosterEntry]:
        self._forget_the_long_dead()
        return sorted(self._entries.values(), key=lambda e: e.worker_id)

    def _forget_the_long_dead(self) -> None:
        horizon = time.monotonic() - 2 * self.dead_after
        for worker_id in [w for w, e in self._entries.items() if e.last_seen < horizon]:
            del self._entries[worker_id]
