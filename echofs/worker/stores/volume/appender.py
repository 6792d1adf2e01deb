"""The one writer of a volume store: a thread that appends with group commit.

Puts and deletes hand it a record and await a future. The thread takes
everything queued at that moment (up to :data:`MAX_BATCH_BYTES` and
:data:`MAX_BATCH_RECORDS`), writes it with ``pwritev`` (headers and frames
side by side, no concatenation), calls ``fdatasync`` once, and only then
hands the batch back to the event loop, which applies it to the index and
resolves the futures. Nothing is acknowledged before its fdatasync returns.
No wait is added to gather a batch: while one fdatasync is in flight, new
requests queue up, and the next batch takes them all.

The thread owns the volume being appended to. It rolls over to a new volume
(next number, created with O_EXCL and made durable with a directory fsync
before a record is acknowledged in it) when a batch would take the current
one past its size limit; a batch larger than the limit gets a volume of its
own. A batch that fails (disk full, I/O error) is cut back off the file as
far as possible and the volume abandoned: the next batch starts a new one, so
a volume never has unacknowledged bytes in the middle. After each fdatasync
the thread checks that the file is still linked: a volume deleted from under
the store (a wiped disk) fails the batch instead of acknowledging writes
that no longer have a file.

Before each batch the thread measures the disk: puts that would leave less
free space than the store's reserve are refused (InsufficientStorage)
without touching the file, tombstones always go (they are what frees space).
A batch the disk refuses all the same (ENOSPC) is cut off like any failed
one. The store may ask for the volume being appended to to be sealed
(:meth:`Appender.seal`), so that compaction can take it when space is short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from echofs.core.errors import InsufficientStorage
from echofs.core.space import NO_RESERVE, SpaceReserve
from echofs.disk_space import ROOM_LOCK, DiskSpace, measure
from echofs.worker.stores.volume.files import fsync_dir, volume_name
from echofs.worker.stores.volume.records import HEADER_SIZE, Kind, encode_header

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 64 * 1024 * 1024
MAX_BATCH_RECORDS = 512
_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024


@dataclass(slots=True)
class Append:
    kind: Kind
    chunk_id: str
    frame: bytes
    future: asyncio.Future[bool]

    @property
    def record_len(self) -> int:
        return HEADER_SIZE + len(self.frame)


@dataclass(slots=True)
class BatchOutcome:
    items: list[Append]
    seq: int = 0  # the volume it went to
    offsets: list[int] = field(default_factory=list)
    end: int = 0  # that volume's size after it
    error: OSError | None = None
    opened: int | None = None  # a volume created for this batch
    lost: int | None = None  # a volume found deleted from under the store
    refused: list[Append] = field(default_factory=list)  # puts over the reserve
    refusal: InsufficientStorage | None = None  # why they were refused
    space: DiskSpace | None = None  # the disk as measured before the batch
    sealed: int | None = None  # a volume no longer appended to (see seal)


class VolumeRemoved(OSError):
    """The volume file was deleted while the store was using it."""


class Appender:
    def __init__(self, directory: Path, *, loop: asyncio.AbstractEventLoop,
                 on_batch: Callable[[BatchOutcome], None], next_seq: int,
                 volume_limit: int, resume: tuple[int, int] | None = None,
                 reserve: SpaceReserve = NO_RESERVE) -> None:
        """``resume``: (number, size) of a volume to keep appending to."""
        self.directory = directory
        self.volume_limit = volume_limit
        self.reserve = reserve
        self._loop = loop
        self._on_batch = on_batch
        self._next_seq = next_seq
        self._fd = -1
        self._seq, self._end = resume if resume is not None else (0, 0)
        self._resume = resume is not None
        self._queue: deque[Append] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._seal = False
        self._thread = threading.Thread(target=self._run, name=f"volume-writer {directory}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: Append) -> None:
        with self._cond:
            if self._stopping:
                raise RuntimeError("chunk store is closed")
            self._queue.append(item)
            self._cond.notify()

    def seal(self) -> None:
        """Stop appending to the current volume; the next batch starts a new
        one. Reported back as ``BatchOutcome.sealed``."""
        with self._cond:
            self._seal = True
            self._cond.notify()

    def stop(self) -> None:
        """Write what is queued, then end the thread (blocks: call in a thread)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping and not self._seal:
                    self._cond.wait()
                seal, self._seal = self._seal, False
                if not self._queue and not seal:
                    break
                batch = self._take() if self._queue else []
            outcomes = [self._write(batch)] if batch else []
            if seal:
                outcomes.append(self._sealed())
            try:
                for outcome in outcomes:
                    self._loop.call_soon_threadsafe(self._on_batch, outcome)
            except RuntimeError:  # the loop is gone: nobody awaits these any more
                break
        self._close()

    def _take(self) -> list[Append]:
        """The queued records that fit the batch limits and the room left in
        the current volume (so a volume exceeds its limit only by a single
        record larger than the limit)."""
        batch = [self._queue.popleft()]
        size = batch[0].record_len
        room = self.volume_limit - self._end
        if self._end == 0 or size > room:
            room = self.volume_limit  # this batch starts a volume
        limit = min(MAX_BATCH_BYTES, room)
        while (self._queue and len(batch) < MAX_BATCH_RECORDS
               and size + self._queue[0].record_len <= limit):
            item = self._queue.popleft()
            batch.append(item)
            size += item.record_len
        return batch

    def _sealed(self) -> BatchOutcome:
        outcome = BatchOutcome([])
        self._resume = False
        if self._fd >= 0 or self._seq:  # one open, or one to resume
            outcome.sealed = self._seq
        self._close()
        return outcome

    def _write(self, batch: list[Append]) -> BatchOutcome:
        outcome = BatchOutcome(batch)
        start = -1
        try:
            with ROOM_LOCK:
                self._refuse_over_reserve(outcome)
                batch = outcome.items
                if not batch:
                    return outcome
                self._ready(outcome, sum(item.record_len for item in batch))
                start = pos = self._end
                buffers: list[bytes | memoryview] = []
                for item in batch:
                    frame = item.frame
                    buffers.append(encode_header(item.kind, bytes.fromhex(item.chunk_id), frame))
                    if frame:
                        buffers.append(frame)
                    outcome.offsets.append(pos)
                    pos += item.record_len
                _pwritev_all(self._fd, buffers, start)
            os.fdatasync(self._fd)
            if os.fstat(self._fd).st_nlink == 0:
                outcome.lost = self._seq
                raise VolumeRemoved(f"volume {self._seq} in {self.directory} was deleted")
        except OSError as exc:
            outcome.error = exc
            outcome.offsets.clear()
            self._abandon(start)
            return outcome
        self._end = pos
        outcome.seq, outcome.end = self._seq, pos
        return outcome

    def _refuse_over_reserve(self, outcome: BatchOutcome) -> None:
        """Move the puts that would eat into the reserve from ``outcome.items``
        to ``outcome.refused``; tombstones always stay."""
        space = outcome.space = measure(self.directory)
        reserve = self.reserve.bytes_for(space.total)
        room = space.free - reserve
        kept: list[Append] = []
        for item in outcome.items:
            if item.kind is Kind.PUT and item.record_len > room:
                outcome.refused.append(item)
                continue
            room -= item.record_len
            kept.append(item)
        if outcome.refused:
            outcome.items = kept
            outcome.refusal = InsufficientStorage(
                f"not enough free space on {self.directory.parent}: {space.free} bytes free, "
                f"{reserve} kept in reserve; delete files to make room")

    def _ready(self, outcome: BatchOutcome, batch_bytes: int) -> None:
        """Have a volume with room for the batch (noting in ``outcome`` one
        created, or one found deleted)."""
        if self._resume:
            self._resume = False
            with contextlib.suppress(FileNotFoundError):  # else: a new one below
                self._fd = os.open(self.directory / volume_name(self._seq),
                                   os.O_WRONLY | os.O_CLOEXEC)
        if self._fd >= 0 and os.fstat(self._fd).st_nlink == 0:
            outcome.lost = self._seq  # wiped since the last batch: start anew
            self._close()
        if self._fd >= 0 and self._end > 0 and self._end + batch_bytes > self.volume_limit:
            self._close()  # sealed: every byte of it was synced with its batch
        if self._fd >= 0:
            return
        seq = self._next_seq
        created = not self.directory.is_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / volume_name(seq),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self._next_seq += 1
        self._fd, self._seq, self._end = fd, seq, 0
        outcome.opened = seq  # the loop learns of it even if this batch fails
        # The new name must survive a power cut before a record in it is
        # acknowledged (and so must the folder, if it was just made again).
        fsync_dir(self.directory)
        if created:
            fsync_dir(self.directory.parent)

    def _abandon(self, start: int) -> None:
        """After a failed batch: cut its bytes off (best effort) and leave the
        volume, so the next batch starts clean in a new one."""
        if self._fd < 0:
            return
        if start >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
        log.warning("abandoning volume %d of %s after a failed write", self._seq,
                    self.directory)
        self._close()

    def _close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        self._end = 0


def _pwritev_all(fd: int, buffers: list[bytes | memoryview], offset: int) -> None:
    """Write every buffer at ``offset`` on, across short writes and IOV_MAX."""
    i = 0
    while i < len(buffers):
        written = os.pwritev(fd, buffers[i : i + _IOV_MAX], offset)
        if written <= 0:
            raise OSError(f"pwritev wrote {written} bytes")
        offset += written
        while written:
            size = len(buffers[i])
            if written >= size:
                written -= size
                i += 1
            else:
                buffers[i] = memoryview(buffers[i])[written:]
                written = 0
