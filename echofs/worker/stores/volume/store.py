"""VolumeChunkStore: chunk frames appended to a few large files, found by an
in-memory index (the Haystack / SeaweedFS design).

Where things are (``ROOT`` is the store's folder)::

    ROOT/volumes/NNNNNNNN[.G].vol   records (``records``), appended to the newest
    ROOT/volumes/index.snap         the index as of some point (``index``)
    ROOT/volumes/LOCK               held (flock) while a process has the store open
    ROOT/chunks/ab/cd/<id>          chunks of the one-file-per-chunk layout (``legacy``)

Writes: one writer thread appends batches with one fdatasync each (group
commit, ``appender``); ``put`` returns once its batch is synced. A put of an
id already stored does nothing if the stored record's checksum holds; if it
does not, or the copy is gone, the new copy is appended and wins (this is how
the replicator repairs a corrupt copy). ``delete`` appends a tombstone.

Reads: an index lookup on the event loop, then one positional read; small
records are read on the loop itself (a thread hop costs more than a read
from the page cache), larger ones in a thread. A record whose checksum fails
raises :class:`~echofs.core.errors.CorruptChunk`: a damaged frame is never
returned.

A volume file deleted from under the store (a wiped disk) is noticed when
the scrubber re-reads a chunk in it (:meth:`reread`), when a put checks a
copy in it, when the ids are listed, or by the next batch written to it: its
chunks are forgotten, so
they read as missing and are repaired from other replicas, and writes go on
in a new volume (the folders are made again). Plain reads skip that check
(an fstat costs more than the read itself): until then they are served from
the still-open file, and its bytes are still right.

Background: sealed volumes with enough garbage are compacted (``compaction``),
and the index snapshot is rewritten at each rollover, after compaction and at
close, so an open scans only what was written since (``recovery``).

Space: puts that would eat into the store's reserve of free space are refused
with :class:`~echofs.core.errors.InsufficientStorage` (as is a batch the disk
itself refuses, ENOSPC: its partial bytes are cut off, the store goes on);
deletes never are. While the disk is low on space (within one reserve of
full), deleted bytes are given back at once rather than at the usual garbage
share: any volume with :data:`PRESSURE_GARBAGE` (or an eighth of it) of
garbage is compacted as soon as its live records fit in the free space, and
the volume being appended to is sealed first so it can be. Unless set,
volumes are sized to half the reserve at most, so that any one of them can
be compacted within the reserve however full the disk.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from echofs.core.chunk_codec import is_chunk_id
from echofs.core.errors import ChunkMissing, CorruptChunk, InsufficientStorage
from echofs.core.space import NO_RESERVE, SpaceReserve, SpaceState
from echofs.core.worker_status import StoreUsage
from echofs.disk_space import DiskSpace, measure
from echofs.worker.stores.base import ChunkStore
from echofs.worker.stores.volume.appender import Append, Appender, BatchOutcome
from echofs.worker.stores.volume.compaction import Compactor
from echofs.worker.stores.volume.files import VOLUMES_DIR, VolumeFile
from echofs.worker.stores.volume.index import ChunkIndex, Location, SnapshotVolume, write_snapshot
from echofs.worker.stores.volume.legacy import LegacyChunks, MigrateReport, Progress
from echofs.worker.stores.volume.records import HEADER_SIZE, Kind, read_frame
from echofs.worker.stores.volume.recovery import Recovered, recover

log = logging.getLogger(__name__)

DEFAULT_VOLUME_SIZE = 1024 * 1024 * 1024
# The least a volume is sized to when it follows the reserve.
MIN_VOLUME_SIZE = 256 * 1024
DEFAULT_COMPACT_RATIO = 0.5
# Records up to this size are read on the event loop: a page-cache pread of
# 64 KiB takes a few microseconds, a thread hop tens.
READ_ON_LOOP = 64 * 1024
# Under space pressure a volume is compacted once this much of it (or a
# eighth of it, if less) is garbage: enough to be worth a rewrite.
PRESSURE_GARBAGE = 1024 * 1024
# Short of space, how often maintenance looks again without being woken.
PRESSURE_RECHECK = 1.0
_LOCK_NAME = "LOCK"


class StoreInUse(OSError):
    """Another process has this store open (a running worker)."""


class VolumeChunkStore(ChunkStore):
    def __init__(self, root: Path, *, volume_size: int | None = None,
                 compact_ratio: float = DEFAULT_COMPACT_RATIO,
                 reserve: SpaceReserve = NO_RESERVE) -> None:
        """``volume_size`` unset: :data:`DEFAULT_VOLUME_SIZE`, or half the
        reserve if that is smaller (see :meth:`open`)."""
        if volume_size is not None and volume_size <= HEADER_SIZE:
            raise ValueError(f"volume size {volume_size} is too small")
        if not 0 < compact_ratio <= 1:
            raise ValueError(f"compaction ratio {compact_ratio} is not in (0, 1]")
        self.root = Path(root)
        self.description = f"local:{self.root}"
        self._volume_size = volume_size
        self.volume_size = volume_size or DEFAULT_VOLUME_SIZE
        self.compact_ratio = compact_ratio
        self.reserve = reserve
        # The disk as last measured (by the writer, before each batch).
        self._space: DiskSpace | None = None
        self._short_noted = False  # maintenance ran out of space, and said so
        self._dir = self.root / VOLUMES_DIR
        self._index = ChunkIndex()
        self._volumes: dict[int, VolumeFile] = {}
        self._active: int | None = None  # the volume appends go to, as last heard
        self._legacy: LegacyChunks | None = None
        self._appender: Appender | None = None
        self._compactor = Compactor(self._dir, self._index, self._volumes,
                                    has_room=self._room_for)
        self._compacting = asyncio.Lock()
        self._snapshotting = asyncio.Lock()
        self._wake = asyncio.Event()
        self._snapshot_due = False
        self._maintenance: asyncio.Task[None] | None = None
        self._lock_fd = -1
        self._closing = False
        # How the last open found the index: "snapshot" (+ tail) or "scan".
        self.opened_from = ""

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        if self._appender is not None:
            return
        loop = asyncio.get_running_loop()
        recovered = await asyncio.to_thread(self._open_files)
        if self._volume_size is None:
            # Any one sealed volume can then be compacted within the reserve,
            # however full the disk: a volume larger than the free space could
            # only give its deleted bytes back once every record in it was.
            total = (await asyncio.to_thread(measure, self.root)).total
            half_reserve = self.reserve.bytes_for(total) // 2
            self.volume_size = min(DEFAULT_VOLUME_SIZE,
                                   max(MIN_VOLUME_SIZE, half_reserve or DEFAULT_VOLUME_SIZE))
        self._index = self._compactor.index = recovered.index
        self.opened_from = "snapshot" if recovered.from_snapshot else "scan"
        self._volumes.clear()
        for volume in recovered.volumes:
            self._volumes[volume.seq] = VolumeFile.open(self._dir, volume.seq, volume.gen,
                                                         volume.size)
        last = recovered.volumes[-1] if recovered.volumes else None
        resume = (last.seq, last.size) if last is not None and last.gen == 0 else None
        self._active = resume[0] if resume else None
        if LegacyChunks.present(self.root):
            self._legacy = LegacyChunks(self.root)
            await self._legacy.open(self._index.__contains__)
        self._closing = False
        self._appender = Appender(self._dir, loop=loop, on_batch=self._applied,
                                  next_seq=(last.seq + 1) if last else 1,
                                  volume_limit=self.volume_size, resume=resume,
                                  reserve=self.reserve)
        self._appender.start()
        self._maintenance = asyncio.create_task(self._maintain(),
                                                name=f"volume maintenance {self.root}")
        log.info("opened %s: %d chunks in %d volumes (%s)%s", self.root, len(self._index),
                 len(self._volumes), self.opened_from,
                 f", {len(self._legacy.ids)} in the one-file-per-chunk layout"
                 if self._legacy else "")
        self._wake_if_compactable(list(self._volumes))

    def _open_files(self) -> Recovered:
        self._dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreInUse(f"chunk store {self.root} is in use by another process") from None
        self._lock_fd = fd
        try:
            return recover(self._dir)
        except BaseException:
            self._release_lock()
            raise

    async def close(self) -> None:
        if self._appender is None:
            return
        self._closing = True
        self._wake.set()
        if self._maintenance is not None:
            await self._maintenance  # finishes the step it is in
        await asyncio.to_thread(self._appender.stop)
        await asyncio.sleep(0)  # let the last batch's results be applied
        try:
            await self._save_snapshot()
        except OSError as exc:
            log.warning("could not write the index snapshot of %s (%s); the next open "
                        "scans the volumes", self.root, exc)
        for volume in self._volumes.values():
            volume.retire()
        self._volumes.clear()
        if self._legacy is not None:
            await self._legacy.close()
            self._legacy = None
        self._appender = None
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    # -- the contract ------------------------------------------------------------------

    async def put(self, chunk_id: str, frame: bytes) -> None:
        _check_id(chunk_id)
        location = self._index.get(chunk_id)
        if location is not None:
            if await self._intact(chunk_id, location):
                return  # content addressed: the same bytes are already here
        elif (self._legacy is not None and chunk_id in self._legacy
              and await self._legacy.intact(chunk_id)):
            return
        await self._append(Kind.PUT, chunk_id, frame)
        if self._legacy is not None and chunk_id in self._legacy:
            await self._legacy.delete(chunk_id)  # the volume copy replaces it

    async def get(self, chunk_id: str) -> bytes:
        return await self._get(chunk_id, check_file=False)

    async def reread(self, chunk_id: str) -> bytes:
        """As get, and first check that the volume file is still on disk."""
        return await self._get(chunk_id, check_file=True)

    async def _get(self, chunk_id: str, *, check_file: bool) -> bytes:
        _check_id(chunk_id)
        location = self._index.get(chunk_id)
        if location is None:
            if self._legacy is not None and chunk_id in self._legacy:
                return await self._legacy.get(chunk_id)
            raise ChunkMissing(f"chunk {chunk_id} not in {self.description}")
        return await self._read(chunk_id, location, check_file=check_file)

    async def delete(self, chunk_id: str) -> bool:
        _check_id(chunk_id)
        if chunk_id in self._index:
            return await self._append(Kind.TOMBSTONE, chunk_id, b"")
        if self._legacy is not None and chunk_id in self._legacy:
            return await self._legacy.delete(chunk_id)
        return False

    async def has(self, chunk_id: str) -> bool:
        _check_id(chunk_id)
        return chunk_id in self._index or (self._legacy is not None and chunk_id in self._legacy)

    async def list_ids(self) -> AsyncIterator[str]:
        # Listing is rare (the sweeper, operators) and must tell what is on
        # disk: a volume deleted from under the store lists nothing.
        for seq, volume in list(self._volumes.items()):
            if not volume.linked():
                self._lose(seq)
        ids = set(self._index.ids())
        if self._legacy is not None:
            ids |= self._legacy.ids
        for chunk_id in sorted(ids):
            yield chunk_id

    async def usage(self) -> StoreUsage:
        count, stored = len(self._index), self._index.bytes
        if self._legacy is not None:
            legacy_count, legacy_bytes = await self._legacy.counts()
            count, stored = count + legacy_count, stored + legacy_bytes
        disk = self._space = await asyncio.to_thread(measure, self.root)
        if self._pressed():
            self._wake_if_compactable(list(self._volumes))
        return StoreUsage(count, stored, disk.total, disk.free,
                          self.reserve.bytes_for(disk.total))

    # -- beyond the contract -----------------------------------------------------------

    async def compact(self) -> int:
        """Compact every sealed volume whose garbage share reached the
        threshold, now; bytes freed. (The background task calls this too.)"""
        freed = 0
        async with self._compacting:
            while True:
                progress = 0
                for seq in sorted(self._volumes):
                    if self._closing:
                        break
                    if self._compactable(seq):
                        progress += await self._compactor.compact(seq)
                        self._snapshot_due = True
                freed += progress
                if not progress or self._closing or not self._pressed():
                    break
                # Short of space, what was freed may let a volume be compacted
                # that did not fit before: measure again and go round.
                self._space = await asyncio.to_thread(measure, self.root)
        if self._snapshot_due and not self._closing:
            await self._save_snapshot()
        return freed

    async def convert_legacy(self, progress: Progress | None = None) -> MigrateReport:
        """Move every chunk of the one-file-per-chunk layout into volumes."""
        if self._legacy is None:
            return MigrateReport(0, 0, 0)

        async def append(chunk_id: str, frame: bytes) -> None:
            if chunk_id not in self._index:
                await self._append(Kind.PUT, chunk_id, frame)

        report = await self._legacy.migrate(append, progress)
        await self._save_snapshot()
        return report

    def volume_stats(self) -> list[tuple[int, int, int]]:
        """(number, size, garbage bytes) of each volume, oldest first."""
        return [(seq, v.size, self._index.garbage.get(seq, 0))
                for seq, v in sorted(self._volumes.items())]

    # -- internals ---------------------------------------------------------------------

    async def _append(self, kind: Kind, chunk_id: str, frame: bytes) -> bool:
        if self._appender is None:
            raise RuntimeError(f"chunk store {self.root} is not open")
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._appender.submit(Append(kind, chunk_id, frame, future))
        return await future

    def _applied(self, outcome: BatchOutcome) -> None:
        """A batch is durable (or failed): apply it to the index in log order,
        then answer its callers. Runs on the event loop."""
        if outcome.space is not None:
            self._space = outcome.space
        if outcome.sealed is not None and outcome.sealed == self._active:
            self._active = None  # no volume is appended to until the next opens
            self._wake_if_compactable([outcome.sealed])
        if outcome.opened is not None:
            self._opened(outcome.opened)
        if outcome.lost is not None:
            self._lose(outcome.lost)
        for item in outcome.refused:
            if not item.future.done():
                assert outcome.refusal is not None
                item.future.set_exception(outcome.refusal)
        if outcome.error is not None:
            error = self._explained(outcome.error, outcome.items)
            for item in outcome.items:
                if not item.future.done():
                    item.future.set_exception(error)
            return
        touched: set[int] = set()
        index = self._index
        for item, offset in zip(outcome.items, outcome.offsets, strict=True):
            old = index.get(item.chunk_id)
            if item.kind is Kind.PUT:
                index.put(item.chunk_id, outcome.seq, offset, len(item.frame))
                result = True
            else:
                result = index.delete(item.chunk_id)
            if old is not None:
                touched.add(old.seq)
            # Applied even if the caller gave up waiting: the record is on disk.
            if not item.future.done():
                item.future.set_result(result)
        volume = self._volumes.get(outcome.seq)
        if volume is not None:
            volume.size = outcome.end
        self._wake_if_compactable(touched)

    def _explained(self, error: OSError, items: list[Append]) -> Exception:
        if error.errno != errno.ENOSPC:
            return error
        log.warning("%s: the disk is full (a batch of %d records refused; its bytes were "
                    "cut off)", self.root, len(items))
        return InsufficientStorage(f"no space left on the disk of {self.description}; "
                                   "delete files to make room")

    def _opened(self, seq: int) -> None:
        """The writer rolled over: the volume before is sealed."""
        self._active = seq
        try:
            self._volumes[seq] = VolumeFile.open(self._dir, seq, 0)
        except OSError as exc:  # deleted already; reads of it will miss
            log.error("cannot open new volume %d of %s: %s", seq, self.root, exc)
        self._snapshot_due = True
        self._wake.set()
        self._wake_if_compactable(list(self._volumes))

    def _lose(self, seq: int) -> None:
        volume = self._volumes.pop(seq, None)
        lost = self._index.drop_volume(seq)
        if volume is not None:
            volume.retire()
        log.error("volume %d of %s was deleted from under the store: %d chunks lost "
                  "here (the scrubber has them copied back)", seq, self.root, len(lost))

    async def _read(self, chunk_id: str, location: Location, *, check_file: bool) -> bytes:
        volume = self._volumes.get(location.seq)
        if volume is None or (check_file and not volume.linked()):
            if volume is not None:
                self._lose(location.seq)
            raise ChunkMissing(f"chunk {chunk_id} not in {self.description} (volume gone)")
        raw_id = bytes.fromhex(chunk_id)
        if location.record_len <= READ_ON_LOOP:
            return read_frame(volume.fd, location.offset, location.frame_len, raw_id,
                              one_read=True)
        volume.acquire()
        try:
            return await asyncio.to_thread(read_frame, volume.fd, location.offset,
                                           location.frame_len, raw_id, one_read=False)
        finally:
            volume.release()

    async def _intact(self, chunk_id: str, location: Location) -> bool:
        try:
            await self._read(chunk_id, location, check_file=True)
        except (ChunkMissing, CorruptChunk, OSError):
            return False
        return True

    def _pressed(self) -> bool:
        """Is the disk within one reserve of full (as last measured)?"""
        space = self._space
        return space is not None and space.state(self.reserve) in (SpaceState.LOW,
                                                                    SpaceState.FULL)

    def _worth_compacting(self, seq: int) -> bool:
        """Enough garbage in volume ``seq``, appended to or not."""
        volume = self._volumes.get(seq)
        if volume is None or volume.size == 0:
            return False
        garbage = self._index.garbage.get(seq, 0)
        if garbage >= self.compact_ratio * volume.size:
            return True
        if not self._pressed() or garbage == 0:
            return False
        # Short of space: worth it at less garbage, if the live records fit
        # (the new generation is written before the old file goes).
        space = self._space
        assert space is not None
        live = volume.size - garbage
        enough = min(PRESSURE_GARBAGE, volume.size // 8)
        return (garbage >= enough or live == 0) and self._fits(live, space)

    def _fits(self, size: int, space: DiskSpace) -> bool:
        # Compaction may use half the reserve: it gives back more than it
        # takes, one volume at a time, and deletes keep the other half.
        return size == 0 or size + self.reserve.bytes_for(space.total) // 2 <= space.free

    def _room_for(self, size: int) -> bool:
        """May compaction write ``size`` bytes now? (Measured afresh: runs in
        the compaction's thread, just before it writes.)"""
        return self._fits(size, measure(self._dir))

    def _compactable(self, seq: int) -> bool:
        if self._active is not None and seq >= self._active:
            return False  # still (or possibly still) being appended to
        return self._worth_compacting(seq)

    def _wake_if_compactable(self, seqs: Iterable[int]) -> None:
        seqs = list(seqs)
        active = self._active
        if (active is not None and active in seqs and self._pressed()
                and self._appender is not None and self._worth_compacting(active)):
            self._appender.seal()  # compacted once the writer has left it
        if any(self._compactable(seq) for seq in seqs):
            self._wake.set()

    async def _maintain(self) -> None:
        while True:
            if await self._woken():
                self._wake.clear()
            if self._closing:
                return
            try:
                await self.compact()
                if self._snapshot_due:
                    await self._save_snapshot()
                self._short_noted = False
            except OSError as exc:  # a disk error, a folder removed meanwhile
                if exc.errno == errno.ENOSPC and self._short_noted:
                    continue  # said once already: waits for more garbage or room
                self._short_noted = exc.errno == errno.ENOSPC
                log.warning("volume maintenance of %s failed (%s); retried on the next "
                            "change", self.root, exc)
            except Exception:
                log.exception("volume maintenance of %s failed; retried on the next change",
                              self.root)

    async def _woken(self) -> bool:
        """Wait for a change worth a look. Short of space, also look again
        every :data:`PRESSURE_RECHECK` seconds: a volume that did not fit
        may fit now that other writers freed space (False then)."""
        if not self._pressed():
            await self._wake.wait()
            return True
        try:
            async with asyncio.timeout(PRESSURE_RECHECK):
                await self._wake.wait()
            return True
        except TimeoutError:
            self._space = await asyncio.to_thread(measure, self.root)
            self._wake_if_compactable(list(self._volumes))  # seals the active one if due
            return False

    async def _save_snapshot(self) -> None:
        async with self._snapshotting:
            self._snapshot_due = False
            if not self._dir.is_dir():
                return  # wiped: nothing to describe until a volume exists again
            volumes = [SnapshotVolume(seq, v.gen, v.size, self._index.garbage.get(seq, 0))
                       for seq, v in sorted(self._volumes.items())]
            entries = self._index.copy_entries()
            await asyncio.to_thread(write_snapshot, self._dir, volumes, entries)


def _check_id(chunk_id: str) -> None:
    if not is_chunk_id(chunk_id):
        raise ValueError(f"not a chunk id: {chunk_id!r}")
