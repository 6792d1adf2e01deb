"""Free space kept back on a disk, and how full a store is (Swift's
``fallocate_reserve``).

A store refuses new data once writing it would leave less free space than
its reserve. The reserve is what deletes need: SQLite writes a delete to its
WAL before it frees anything, a volume store appends a tombstone, and
compaction writes a volume's live records anew before the old file goes. A
disk filled to the last byte could do none of them, so the space could not
be freed through the API at all.

Pure: the callers measure the disk (``os.statvfs``) and ask here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from echofs.core.errors import InsufficientStorage

MIB = 1024 * 1024
# Room beyond the reserve under which a store counts as full: less than one
# chunk of the default size fits (placement then writes around it).
FULL_HEADROOM = MIB


class SpaceState(enum.StrEnum):
    """How much room a store has left beyond its reserve."""

    OK = "ok"
    LOW = "low"  # within one reserve of full: reclaim deleted data early
    FULL = "full"  # takes no new chunks; still serves reads and deletes
    UNKNOWN = "unknown"  # no size to report (object stores) or not heard from


@dataclass(frozen=True, slots=True)
class SpaceReserve:
    """``min_bytes`` or ``percent`` of the disk, whichever is larger."""

    min_bytes: int = 0
    percent: float = 0.0

    def __post_init__(self) -> None:
        if self.min_bytes < 0 or not 0 <= self.percent < 100:
            raise ValueError(f"bad space reserve: {self.min_bytes} bytes, {self.percent}%")

    def bytes_for(self, total: int) -> int:
        return max(self.min_bytes, int(total * self.percent / 100))

    def check(self, what: str, *, free: int, total: int, incoming: int) -> None:
        """Raise :class:`InsufficientStorage` if ``incoming`` more bytes would
        eat into the reserve of a disk with ``free`` of ``total`` bytes."""
        reserve = self.bytes_for(total)
        if free - incoming < reserve:
            raise InsufficientStorage(
                f"not enough free space on {what}: {free} bytes free, {reserve} kept in "
                f"reserve, {incoming} to write; delete files to make room")


def space_state(*, free: int, total: int, reserve: int) -> SpaceState:
    if total <= 0:
        return SpaceState.UNKNOWN
    if free < reserve + FULL_HEADROOM:
        return SpaceState.FULL
    if free < 2 * reserve + FULL_HEADROOM:
        return SpaceState.LOW
    return SpaceState.OK


# Stores built without one (tests, tools): refuse only what the disk refuses.
NO_RESERVE = SpaceReserve()
