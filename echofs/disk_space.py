"""How big a local disk is and how much of it is free, measured where a
store keeps its files (chunk stores and the SQLite metadata both ask).

``os.statvfs`` is one system call of a few microseconds: cheap enough to ask
before every batch of writes, which is what keeps the reserve exact.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from echofs.core.space import SpaceReserve, SpaceState, space_state

# Held by a writer from its check of the room left until the bytes it
# checked for are taken (written to the page cache, or allocated): writers
# of one process (an embedded node's workers share a disk) cannot then both
# count on the same free bytes and eat the reserve together. Never held
# across an fsync.
ROOM_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class DiskSpace:
    total: int
    free: int  # what an unprivileged writer may still use (f_bavail)

    def state(self, reserve: SpaceReserve) -> SpaceState:
        return space_state(free=self.free, total=self.total,
                           reserve=reserve.bytes_for(self.total))


def measure(path: Path) -> DiskSpace:
    """The disk holding ``path``, or its nearest existing parent (a store
    folder wiped from under a running store)."""
    for candidate in (path, *path.parents):
        try:
            stats = os.statvfs(candidate)
        except (FileNotFoundError, NotADirectoryError):
            continue
        return DiskSpace(stats.f_blocks * stats.f_frsize, stats.f_bavail * stats.f_frsize)
    raise FileNotFoundError(f"no existing folder at or above {path}")


def check_room(path: Path, reserve: SpaceReserve, incoming: int, what: str) -> DiskSpace:
    """Raise :class:`~echofs.core.errors.InsufficientStorage` unless
    ``incoming`` bytes fit on ``path``'s disk beside its reserve."""
    space = measure(path)
    reserve.check(what, free=space.free, total=space.total, incoming=incoming)
    return space
