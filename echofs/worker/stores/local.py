"""Chunk frames as files on a local disk.

Layout: ``ROOT/chunks/ab/cd/<chunk id>`` (two fan-out levels keep directories
small) and ``ROOT/tmp/`` for writes in progress. A write goes to a temporary
file, is fsync'd, renamed into place and the directory fsync'd: after ``put``
returns the chunk survives a power cut, and a crash mid-write leaves only a
temporary file, which ``open`` removes.

A put that would leave less free space than the store's reserve is refused
with :class:`~echofs.core.errors.InsufficientStorage` (so is one the disk
itself refuses, ENOSPC, its partial temporary file removed); deletes are
never refused.

File I/O runs in threads so the event loop keeps serving other requests.
"""

from __future__ import annotations

import asyncio
import errno
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from echofs.core.chunk_codec import is_chunk_id
from echofs.core.errors import ChunkMissing, InsufficientStorage
from echofs.core.space import NO_RESERVE, SpaceReserve
from echofs.core.worker_status import StoreUsage
from echofs.disk_space import ROOM_LOCK, check_room, measure
from echofs.worker.stores.base import ChunkStore
from echofs.worker.stores.fsync import fsync_dir


class LocalChunkStore(ChunkStore):
    def __init__(self, root: Path, *, reserve: SpaceReserve = NO_RESERVE) -> None:
        self.root = Path(root)
        self.description = f"local:{self.root}"
        self.reserve = reserve
        self._chunks = self.root / "chunks"
        self._tmp = self.root / "tmp"
        self._count = 0
        self._bytes = 0
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        await asyncio.to_thread(self._open_sync)

    def _open_sync(self) -> None:
        self._chunks.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        for leftover in self._tmp.iterdir():  # writes a crash interrupted
            leftover.unlink(missing_ok=True)
        count = total = 0
        for path in self._chunks.glob("*/*/*"):
            count += 1
            total += path.stat().st_size
        self._count, self._bytes = count, total

    def _path(self, chunk_id: str) -> Path:
        if not is_chunk_id(chunk_id):
            # Ids become file names: refuse anything that is not a digest.
            raise ValueError(f"not a chunk id: {chunk_id!r}")
        return self._chunks / chunk_id[:2] / chunk_id[2:4] / chunk_id

    async def put(self, chunk_id: str, frame: bytes) -> None:
        path = self._path(chunk_id)
        added = await asyncio.to_thread(self._put_sync, path, frame)
        if added:
            async with self._lock:
                self._count += 1
                self._bytes += len(frame)

    def _put_sync(self, path: Path, frame: bytes) -> bool:
        """Write ``frame`` durably at ``path``; True if the id was new here."""
        self._tmp.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp / f"{path.name}.{uuid.uuid4().hex}"
        try:
            with ROOM_LOCK:
                check_room(self.root, self.reserve, len(frame), self.description)
                fd = _written(tmp, frame)
            _sync_and_close(fd)
        except OSError as exc:
            tmp.unlink(missing_ok=True)  # a partial copy must not eat the reserve
            if exc.errno == errno.ENOSPC:
                raise InsufficientStorage(f"{self.description}: no space left on device "
                                          f"for a {len(frame)}-byte chunk") from exc
            raise
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                # link() fails if the id exists: an atomic "was it new?" that
                # keeps the counters exact when two writers race on one id.
                os.link(tmp, path)
                added = True
                tmp.unlink()
            except FileExistsError:
                # Rewriting an existing id replaces a possibly damaged copy
                # with a verified one (repair), so we rename over it.
                os.replace(tmp, path)
                added = False
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)
        return added

    async def get(self, chunk_id: str) -> bytes:
        path = self._path(chunk_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ChunkMissing(f"chunk {chunk_id} not in {self.description}") from exc

    async def delete(self, chunk_id: str) -> bool:
        path = self._path(chunk_id)
        size = await asyncio.to_thread(_unlink_size, path)
        if size is None:
            return False
        async with self._lock:
            self._count = max(0, self._count - 1)
            self._bytes = max(0, self._bytes - size)
        return True

    async def has(self, chunk_id: str) -> bool:
        return await asyncio.to_thread(self._path(chunk_id).is_file)

    async def list_ids(self) -> AsyncIterator[str]:
        names = await asyncio.to_thread(
            lambda: sorted(p.name for p in self._chunks.glob("*/*/*") if is_chunk_id(p.name))
        )
        for name in names:
            yield name

    async def usage(self) -> StoreUsage:
        disk = await asyncio.to_thread(measure, self.root)
        return StoreUsage(self._count, self._bytes, disk.total, disk.free,
                          self.reserve.bytes_for(disk.total))


def _written(path: Path, frame: bytes) -> int:
    """``frame`` written to a new file at ``path`` (not synced yet): its fd."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(frame)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except BaseException:
        os.close(fd)
        raise
    return fd


def _sync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_size(path: Path) -> int | None:
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return None
    return size
