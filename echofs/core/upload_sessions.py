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


# The most parts one session may have (S3's limit too); part numbers run
# from 0 to MAX_PARTS (S3 numbers from 1).
MAX_PARTS = 10_000


@dataclass(frozen=True, slots=True)
class PartLayout:
    """How a session's file is cut into parts.

    Fixed (``total_size`` known, the original's ``upload/init``): every part
    but the last is exactly ``part_size`` bytes, and ``complete`` needs them
    all. Free (``total_size`` None, as S3 multipart uploads go): any part
    number up to :data:`MAX_PARTS`, each of 0 to ``part_size`` bytes, and
    ``complete`` names the parts the file is made of, in order."""

    total_size: int | None
    part_size: int

    def __post_init__(self) -> None:
        if self.total_size is not None and self.total_size < 0:
            raise ValueError("total size must not be negative")
        if self.part_size < 1:
            raise ValueError("part size must be at least 1 byte")

    @property
    def fixed(self) -> bool:
        return self.total_size is not None

    @property
    def total_parts(self) -> int | None:
        if self.total_size is None:
            return None
        return max(1, -(-self.total_size // self.part_size))

    def has(self, part: int) -> bool:
        last = MAX_PARTS if self.total_parts is None else self.total_parts - 1
        return 0 <= part <= last

    def offset(self, part: int) -> int:
        """Where a fixed layout's part starts."""
        return part * self.part_size

    def size(self, part: int) -> int | None:
        """Bytes the part must hold exactly (None: free, up to ``part_size``)."""
        if self.total_size is None:
            return None
        return max(0, min(self.part_size, self.total_size - self.offset(part)))

    def expectations(self) -> list[dict[str, int]]:
        """Every part's index, offset and size (the init answer's list)."""
        if self.total_parts is None:
            return []
        return [{"index": n, "offset": self.offset(n), "size": self.size(n) or 0}
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
    def total_parts(self) -> int | None:
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
    # MD5 (hex), kept when asked for: an S3 part's ETag.
    md5: str | None
    chunk_count: int
    replicas_acked: int
    stored_at: float
