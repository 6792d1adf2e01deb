"""Resumable upload sessions, the pure part: how a file announced by its size
is cut into numbered parts, and the records a session is made of.

A file of ``total_size`` bytes sent in parts of ``part_size`` bytes has
``ceil(total_size / part_size)`` parts (one empty part for an empty file),
numbered from 0; each is ``part_size`` bytes except the last, which holds
the rest. Part ``n`` starts at ``n * part_size``. The layout is all a master
needs to check a part, so any master can take any part of any session.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from echofs.core.consistency import Mode


class SessionState(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class PartLayout:
    total_size: int
    part_size: int

    def __post_init__(self) -> None:
        if self.total_size < 0:
            raise ValueError("total size must not be negative")
        if self.part_size < 1:
            raise ValueError("part size must be at least 1 byte")

    @property
    def total_parts(self) -> int:
        return max(1, -(-self.total_size // self.part_size))

    def has(self, part: int) -> bool:
        return 0 <= part < self.total_parts

    def offset(self, part: int) -> int:
        return part * self.part_size

    def size(self, part: int) -> int:
        """Bytes part ``part`` must hold exactly."""
        return max(0, min(self.part_size, self.total_size - self.offset(part)))

    def expectations(self) -> list[dict[str, int]]:
        """Every part's index, offset and size (the init answer's list)."""
        return [{"index": n, "offset": self.offset(n), "size": self.size(n)}
                for n in range(self.total_parts)]


@dataclass(frozen=True, slots=True)
class UploadSession:
    session_id: str
    owner: str
    path: str
    layout: PartLayout
    mode: Mode
    state: SessionState
    created_at: float
    expires_at: float
    # Set once completed: the version the session made.
    file_id: str | None = None
    version: int | None = None
    blake3: str | None = None

    @property
    def total_parts(self) -> int:
        return self.layout.total_parts

    def expired(self, now: float) -> bool:
        return now >= self.expires_at


@dataclass(frozen=True, slots=True)
class PartRecord:
    """A part the session holds, by the digests of its bytes."""

    part: int
    size: int
    blake3: str
    sha256: str | None
    chunk_count: int
    replicas_acked: int
    stored_at: float
