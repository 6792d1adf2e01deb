"""Volume files: their names, and the read side's handle on one.

``ROOT/volumes/NNNNNNNN.vol`` is volume number N as first written;
``NNNNNNNN.G.vol`` is generation G of it, written by compaction with the live
records of the generation before. A compacted volume keeps its number
because its records keep their place in the log's order: replaying volumes
by number, whichever generation of each, gives the same index.
``*.tmp`` files are writes (compaction output, index snapshots) that had not
been renamed into place when the process stopped; opening a store deletes
them.

Reads go through a :class:`VolumeFile`, which owns a read-only descriptor.
Compaction replaces a volume's file while reads may be in flight on another
thread: the old handle is *retired* (no new read finds it, the index points
at the new generation) and its descriptor is closed only when the last read
holding it returns, so a read never meets a closed descriptor or a reused
offset.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from echofs.worker.stores.fsync import fsync_dir  # noqa: F401 - the volume modules take it from here

VOLUMES_DIR = "volumes"
TMP_SUFFIX = ".tmp"
_NAME = re.compile(r"^(\d{8})(?:\.(\d+))?\.vol$")


def volume_name(seq: int, gen: int = 0) -> str:
    return f"{seq:08d}.vol" if gen == 0 else f"{seq:08d}.{gen}.vol"


def parse_volume_name(name: str) -> tuple[int, int] | None:
    """(number, generation) of a volume file name, or None."""
    match = _NAME.match(name)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


@dataclass(eq=False)
class VolumeFile:
    seq: int
    gen: int
    path: Path
    fd: int
    # Bytes of the file the index accounts for (where the next record goes
    # while this is the volume being appended to).
    size: int = 0
    _readers: int = field(default=0, repr=False)
    _retired: bool = field(default=False, repr=False)

    @classmethod
    def open(cls, directory: Path, seq: int, gen: int, size: int = 0) -> VolumeFile:
        path = directory / volume_name(seq, gen)
        return cls(seq, gen, path, os.open(path, os.O_RDONLY | os.O_CLOEXEC), size)

    def acquire(self) -> None:
        """Keep the descriptor open across a read that leaves the event loop."""
        self._readers += 1

    def release(self) -> None:
        self._readers -= 1
        if self._retired and self._readers == 0:
            self._close()

    def retire(self) -> None:
        """No read will start on this handle again; close once none runs."""
        self._retired = True
        if self._readers == 0:
            self._close()

    def linked(self) -> bool:
        """False once the file was removed from under us (a wiped disk)."""
        return self.fd >= 0 and os.fstat(self.fd).st_nlink > 0

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
