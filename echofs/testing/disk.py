"""What a local chunk store holds on disk, read and damaged from outside it.

Tests prove durability claims by looking at the files themselves (not by
asking the store) and by damaging them as a disk would: a flipped bit in a
frame, a record's bytes lost. Both layouts are understood: volume files
(replayed read-only, as a restart would see them) and the older one file per
chunk (``chunks/ab/cd/<id>``), which a volume store still serves.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from echofs.core.chunk_codec import is_chunk_id
from echofs.worker.stores.volume.files import VOLUMES_DIR
from echofs.worker.stores.volume.records import HEADER_SIZE
from echofs.worker.stores.volume.recovery import stored_frames


@dataclass(frozen=True, slots=True)
class StoredCopy:
    """Where one chunk's frame is: ``length`` bytes at ``offset`` of ``path``
    (offset 0 and the whole file in the one-file-per-chunk layout)."""

    path: Path
    offset: int
    length: int
    in_volume: bool

    def read(self) -> bytes:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            return f.read(self.length)


def stored_copies(root: Path) -> dict[str, StoredCopy]:
    """Chunk id -> its copy, for every chunk the store at ``root`` holds."""
    found: dict[str, StoredCopy] = {}
    chunks = root / "chunks"
    if chunks.is_dir():
        for path in chunks.glob("*/*/*"):
            if is_chunk_id(path.name):
                found[path.name] = StoredCopy(path, 0, path.stat().st_size, False)
    for chunk_id, frame in stored_frames(root / VOLUMES_DIR).items():
        found[chunk_id] = StoredCopy(frame.path, frame.offset, frame.length, True)
    return found


def stored_frame(root: Path, chunk_id: str) -> bytes | None:
    copy = stored_copies(root).get(chunk_id)
    return None if copy is None else copy.read()


def flip_stored_byte(root: Path, chunk_id: str, offset: int = -1) -> None:
    """Bit rot: invert one byte of a chunk's stored frame in place
    (``offset`` into the frame; negative counts from its end)."""
    copy = stored_copies(root)[chunk_id]
    at = copy.offset + (offset % copy.length)
    _flip(copy.path, at)


def lose_stored_chunk(root: Path, chunk_id: str) -> None:
    """A chunk's bytes gone from the disk: its file removed, or its whole
    volume record (header and frame) overwritten with zeros."""
    copy = stored_copies(root)[chunk_id]
    if not copy.in_volume:
        copy.path.unlink()
        return
    start = copy.offset - HEADER_SIZE
    fd = os.open(copy.path, os.O_WRONLY)
    try:
        os.pwrite(fd, bytes(HEADER_SIZE + copy.length), start)
    finally:
        os.close(fd)


def _flip(path: Path, at: int) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        byte = os.pread(fd, 1, at)
        os.pwrite(fd, bytes([byte[0] ^ 0xFF]), at)
    finally:
        os.close(fd)


def flip_file_byte(path: Path, at: int) -> None:
    """Invert the byte at ``at`` of any file (a volume's header, an index)."""
    _flip(path, at)


def volume_paths(root: Path) -> list[Path]:
    """The volume files of the store at ``root``, oldest first."""
    return sorted((root / VOLUMES_DIR).glob("*.vol"))


def crash_image(root: Path, dest: Path) -> Path:
    """Copy a running store's folder as a crash right now would leave it:
    every acknowledged record is in the files (synced before its put
    returned); what the store would write at close (its final index
    snapshot) is not. The lock file stays behind: a crash releases it."""
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns("LOCK"))
    return dest
