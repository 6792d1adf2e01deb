"""Compaction: rewrite a sealed volume without its garbage, online.

A volume is compacted once its garbage (put records a later record replaced
or deleted, damaged bytes) reaches a share of its size. Only sealed volumes
(not the one being appended to) are compacted, one at a time, while reads
and writes go on. Steps, with what a crash after each leaves:

1. Plan (event loop): scan the volume's headers (in a thread); keep each put
   record the index still points at, and each tombstone that may still
   cancel a put in an older volume: its id is not live and a lower-numbered
   volume exists. (A tombstone's put is always older than it: in its own
   volume it was dropped as garbage; in an older volume it may still be on
   disk until that volume is compacted too.)
2. :func:`write_generation` (thread): if the disk has room for them beside
   the store's reserve (checked, and the room allocated, under the lock every
   writer of the process takes: an embedded node's workers share one disk;
   else the volume is left as it is, for later), copy the kept records verbatim
   (``copy_file_range``: the kernel copies, frames never pass through
   Python) into ``NNNNNNNN.G.vol.tmp``, then fdatasync it.
   Crash: the temp file is deleted at the next open; the old volume is intact.
3. :func:`publish` (thread): rename the temp file to ``NNNNNNNN.G.vol`` and
   fsync the folder. Crash: both generations exist; the next open keeps the
   newer (complete: its data was synced before the rename) and deletes the
   older. The newer holds every record of the older that was live when the
   plan was made; what was not live then was replaced or deleted by a
   durable record that is still on disk (in this volume, copied along, or in
   a newer one, never compacted away while an older volume could need its
   tombstone), so replaying volumes in number order gives the same index.
4. Switch (event loop, no await): the index moves each copied put it still
   points at (a put or delete applied meanwhile wins; its copy counts as the
   new generation's garbage), and the volume's handle becomes the new file.
   The old handle is retired: reads already past the index finish on it.
5. :func:`remove_old` (thread): delete the old generation, fsync the folder.
   Crash before it: as after step 3. After it: the index snapshot still names
   the old generation, so the next open ignores it and scans every volume.
6. A new snapshot is written (by the store), so the next open is quick again.

A volume with nothing left to keep is simply deleted after the switch.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from echofs.disk_space import ROOM_LOCK
from echofs.worker.stores.volume.files import TMP_SUFFIX, VolumeFile, fsync_dir, volume_name
from echofs.worker.stores.volume.index import ChunkIndex, Location
from echofs.worker.stores.volume.records import Kind, ScannedRecord, scan

log = logging.getLogger(__name__)
_NO_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP}


@dataclass(frozen=True, slots=True)
class Written:
    size: int
    offsets: list[int]  # of each kept record in the new file


def plan_records(fd: int, size: int) -> list[ScannedRecord]:
    return scan(fd, size, check_tail=False).records


def write_generation(directory: Path, src_fd: int, seq: int, gen: int,
                     keep: list[ScannedRecord],
                     has_room: Callable[[int], bool] = lambda size: True) -> Written | None:
    """Copy ``keep`` into a synced temp file for generation ``gen``; None,
    writing nothing, unless ``has_room`` for their bytes. If the copy fails
    (the disk full, most likely) the temp file goes at once: left for the
    next open to delete, it would hold on to the space it took."""
    tmp = directory / (volume_name(seq, gen) + TMP_SUFFIX)
    size = sum(record.header.record_len for record in keep)
    try:
        with ROOM_LOCK:
            if not has_room(size):
                return None
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            _allocate(fd, size)  # the room checked for is taken before the lock goes
        return _copy_records(fd, src_fd, keep)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _allocate(fd: int, size: int) -> None:
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in _NO_COPY_RANGE:  # a file system that cannot: copy anyway
            os.close(fd)
            raise


def _copy_records(fd: int, src_fd: int, keep: list[ScannedRecord]) -> Written:
    try:
        offsets, ranges, pos = [], [], 0
        for record in keep:
            offsets.append(pos)
            length = record.header.record_len
            pos += length
            if ranges and ranges[-1][0] + ranges[-1][1] == record.offset:
                ranges[-1][1] += length  # adjacent: one copy
            else:
                ranges.append([record.offset, length])
        out = 0
        for start, length in ranges:
            _copy_range(src_fd, fd, start, length, out)
            out += length
        os.fdatasync(fd)
    finally:
        os.close(fd)
    return Written(pos, offsets)


def publish(directory: Path, seq: int, gen: int) -> None:
    name = volume_name(seq, gen)
    os.rename(directory / (name + TMP_SUFFIX), directory / name)
    fsync_dir(directory)


def remove_old(path: Path) -> None:
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)


def _copy_range(src: int, dst: int, start: int, length: int, out: int) -> None:
    try:
        while length:
            copied = os.copy_file_range(src, dst, length, start, out)
            if copied == 0:
                raise OSError(errno.EIO, "volume shorter than its records")
            start, out, length = start + copied, out + copied, length - copied
    except OSError as exc:
        if exc.errno not in _NO_COPY_RANGE:
            raise
        while length:  # a file system without copy_file_range
            data = os.pread(src, min(length, 1 << 20), start)
            if not data:
                raise OSError(errno.EIO, "volume shorter than its records") from exc
            os.pwrite(dst, data, out)
            start, out, length = start + len(data), out + len(data), length - len(data)


class Compactor:
    """Compacts the volumes of one store: its folder, index and volume table."""

    def __init__(self, directory: Path, index: ChunkIndex,
                 volumes: dict[int, VolumeFile],
                 has_room: Callable[[int], bool] = lambda size: True) -> None:
        """``has_room(size)``: may a new generation of ``size`` bytes be
        written now (called in a thread, just before)?"""
        self.directory = directory
        self.index = index
        self.volumes = volumes
        self.has_room = has_room

    async def compact(self, seq: int) -> int:
        """Rewrite volume ``seq`` with only what is still needed; bytes freed."""
        old = self.volumes[seq]
        gen = old.gen + 1
        old.acquire()
        try:
            records = await asyncio.to_thread(plan_records, old.fd, old.size)
            keep = self._needed(seq, records)
            written = None
            if keep:
                written = await asyncio.to_thread(write_generation, self.directory, old.fd,
                                                  seq, gen, keep, self.has_room)
                if written is None:
                    # Short of space this is retried every few seconds: not
                    # worth a line each time.
                    log.debug("volume %d of %s not compacted: no room for its %d live "
                              "records beside the reserve", seq, self.directory, len(keep))
                    return 0
                await asyncio.to_thread(publish, self.directory, seq, gen)
        finally:
            old.release()
        if self.volumes.get(seq) is not old:
            # Lost meanwhile (its file deleted from under the store).
            if written is not None:
                await asyncio.to_thread(remove_old, self.directory / volume_name(seq, gen))
            return 0
        self._switch(old, gen, keep, written)
        await asyncio.to_thread(remove_old, old.path)
        freed = old.size - (written.size if written else 0)
        log.info("compacted volume %d of %s: %d records kept, %d bytes freed", seq,
                 self.directory, len(keep), freed)
        return freed

    def _needed(self, seq: int, records: list[ScannedRecord]) -> list[ScannedRecord]:
        older = any(other < seq for other in self.volumes)
        keep = []
        for record in records:
            header = record.header
            chunk_id = header.chunk_id.hex()
            if header.kind is Kind.PUT:
                if self.index.get(chunk_id) == Location(seq, record.offset, header.frame_len):
                    keep.append(record)
            elif older and chunk_id not in self.index:
                keep.append(record)
        return keep

    def _switch(self, old: VolumeFile, gen: int, keep: list[ScannedRecord],
                written: Written | None) -> None:
        """Point the index and the volume table at the new generation (no
        await in here: nothing can run between its steps)."""
        seq = old.seq
        if written is None:
            del self.volumes[seq]
            self.index.garbage.pop(seq, None)
        else:
            new = VolumeFile.open(self.directory, seq, gen, written.size)
            garbage = 0
            for record, offset in zip(keep, written.offsets, strict=True):
                header = record.header
                if header.kind is Kind.PUT and not self.index.relocate(
                        header.chunk_id.hex(), Location(seq, record.offset, header.frame_len),
                        offset):
                    garbage += header.record_len
            self.volumes[seq] = new
            self.index.garbage[seq] = garbage
        old.retire()
