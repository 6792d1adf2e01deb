"""Opening a volume store: from the files on disk back to the index.

Steps, each safe to interrupt and repeat (nothing is lost if the process
dies during any of them, and the next open does them again):

1. Tidy: delete ``*.tmp`` files (a compaction or snapshot that was never
   renamed into place), and every generation of a volume but the newest. A
   newer generation is renamed into place only after its data is synced, so
   it is complete; the older one is what compaction was about to delete.
2. Snapshot: load ``index.snap`` if it checks and agrees with the files
   (see ``index``); otherwise start from an empty index.
3. Replay: scan each volume, in number order, from where the snapshot stops
   (0 without one), applying its records to the index. Only the last volume
   can end in a torn write (every earlier one was synced in full before the
   next was created, and compaction output is complete), so only its tail is
   checked and, if torn, truncated off and synced. Damage in the middle of a
   volume is skipped past, never truncated (``records``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from echofs.worker.stores.volume.files import TMP_SUFFIX, fsync_dir, parse_volume_name, volume_name
from echofs.worker.stores.volume.index import ChunkIndex, Snapshot, read_snapshot
from echofs.worker.stores.volume.records import HEADER_SIZE, Kind, scan

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecoveredVolume:
    seq: int
    gen: int
    size: int


@dataclass
class Recovered:
    index: ChunkIndex
    volumes: list[RecoveredVolume] = field(default_factory=list)
    from_snapshot: bool = False
    truncated: int = 0  # bytes of torn tail cut off the last volume


def recover(directory: Path) -> Recovered:
    """Tidy ``directory``, then rebuild the index (runs in a thread)."""
    directory.mkdir(parents=True, exist_ok=True)
    found = _tidy(directory)
    sizes = {seq: (directory / volume_name(seq, gen)).stat().st_size
             for seq, gen in found.items()}
    snapshot = read_snapshot(directory)
    if snapshot is not None and not _agrees(snapshot, found, sizes):
        log.info("index snapshot in %s does not match the volumes; scanning them", directory)
        snapshot = None
    if snapshot is None:
        result = Recovered(ChunkIndex())
        covered: dict[int, int] = {}
    else:
        garbage = {v.seq: v.garbage for v in snapshot.volumes}
        result = Recovered(ChunkIndex.restored(snapshot.entries, garbage), from_snapshot=True)
        covered = {v.seq: v.end for v in snapshot.volumes}
    last = max(found, default=None)
    for seq in sorted(found):
        gen = found[seq]
        # Generation 0 of the last volume is the one appends went to.
        appended = seq == last and gen == 0
        size = _replay(directory / volume_name(seq, gen), seq, covered.get(seq, 0),
                       sizes[seq], result, appended=appended)
        result.volumes.append(RecoveredVolume(seq, gen, size))
    return result


def _replay(path: Path, seq: int, start: int, size: int, result: Recovered,
            *, appended: bool) -> int:
    """Apply the records of one volume from ``start``; the size it keeps."""
    index = result.index
    fd = os.open(path, os.O_RDWR if appended else os.O_RDONLY)
    try:
        found = scan(fd, size, start, check_tail=appended)
        for record in found.records:
            chunk_id = record.header.chunk_id.hex()
            if record.header.kind is Kind.PUT:
                index.put(chunk_id, seq, record.offset, record.header.frame_len)
            else:
                index.delete(chunk_id)
        index.add_garbage(seq, found.damaged)
        if found.end == size:
            return size
        if appended:
            # A torn write: never acknowledged (its batch's fdatasync had not
            # returned), so it goes, and appends resume at a record boundary.
            log.warning("%s: cutting a torn tail of %d bytes at offset %d",
                        path, size - found.end, found.end)
            os.ftruncate(fd, found.end)
            os.fsync(fd)
            result.truncated += size - found.end
            return found.end
        # Damage at the end of a sealed volume: skipped, left for compaction.
        log.warning("%s: %d damaged bytes at its end", path, size - found.end)
        index.add_garbage(seq, size - found.end)
        return size
    finally:
        os.close(fd)


def _tidy(directory: Path) -> dict[int, int]:
    """Delete leftovers; the newest generation of each volume number."""
    newest: dict[int, int] = {}
    removed = False
    names = sorted(os.listdir(directory))
    for name in names:
        if name.endswith(TMP_SUFFIX):
            (directory / name).unlink(missing_ok=True)
            removed = True
        elif (parsed := parse_volume_name(name)) is not None:
            seq, gen = parsed
            newest[seq] = max(gen, newest.get(seq, gen))
    for name in names:
        parsed = parse_volume_name(name)
        if parsed is not None and parsed[1] != newest[parsed[0]]:
            log.info("removing %s: compaction had replaced it", name)
            (directory / name).unlink(missing_ok=True)
            removed = True
    if removed:
        fsync_dir(directory)
    return newest


def _agrees(snapshot: Snapshot, found: dict[int, int], sizes: dict[int, int]) -> bool:
    covered = {v.seq: v for v in snapshot.volumes}
    for v in snapshot.volumes:
        if found.get(v.seq) != v.gen or sizes[v.seq] < v.end:
            return False
    newest = max(covered, default=0)
    # Volumes it does not know must all be newer than what it covers.
    return all(seq in covered or seq > newest for seq in found)


@dataclass(frozen=True, slots=True)
class StoredFrame:
    path: Path
    offset: int  # of the frame in the file
    length: int


def stored_frames(directory: Path) -> dict[str, StoredFrame]:
    """Where each live chunk's frame is on disk, by replaying every volume
    read-only (no tidying, no truncation): what a restart would serve. For
    tools and tests that inspect or damage a store's files."""
    if not directory.is_dir():
        return {}
    newest: dict[int, int] = {}
    for name in os.listdir(directory):
        if (parsed := parse_volume_name(name)) is not None:
            newest[parsed[0]] = max(parsed[1], newest.get(parsed[0], parsed[1]))
    frames: dict[str, StoredFrame] = {}
    for seq in sorted(newest):
        path = directory / volume_name(seq, newest[seq])
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # compacted away meanwhile
            continue
        try:
            found = scan(fd, os.fstat(fd).st_size, check_tail=False)
        finally:
            os.close(fd)
        for record in found.records:
            chunk_id = record.header.chunk_id.hex()
            if record.header.kind is Kind.PUT:
                frames[chunk_id] = StoredFrame(path, record.offset + HEADER_SIZE,
                                               record.header.frame_len)
            else:
                frames.pop(chunk_id, None)
    return frames

