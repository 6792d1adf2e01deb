"""Chunks a worker stored before volumes: one file each, ``ROOT/chunks/ab/cd/<id>``.

A store opened on such a folder serves them as they are, through
:class:`~echofs.worker.stores.local.LocalChunkStore` (read, verify, delete;
new puts go to volumes), and :meth:`LegacyChunks.migrate` moves them into
volumes for good (``echofs store convert``). Moving is durable before it is
destructive: a batch of legacy frames is appended to the volumes and
acknowledged (fdatasync'd) before any of their files is removed. Interrupted
anywhere, a copy is in the volumes, in its file, or in both; opening the
store again removes the file of any id the volumes hold, so both never count
twice and a delete can never leave a legacy file behind to bring the chunk
back.

A legacy frame that fails verification is not moved: it stays, served as it
is (and reported corrupt by the scrubber, which has it repaired; the repairing
put moves the good copy into volumes and removes the file).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from echofs.core.chunk_codec import verify_frame
from echofs.core.errors import ChunkMissing, CorruptChunk
from echofs.worker.stores.local import LocalChunkStore

# Frames moved per group: enough to share an fdatasync, few enough to keep
# memory flat whatever the chunk size.
_MIGRATE_BATCH = 64
_MIGRATE_BATCH_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class MigrateReport:
    moved: int
    moved_bytes: int
    corrupt_left: int


Progress = Callable[[int, int | None], None]


class LegacyChunks:
    def __init__(self, root: Path) -> None:
        self.files = LocalChunkStore(root)
        self.ids: set[str] = set()

    @staticmethod
    def present(root: Path) -> bool:
        chunks = root / "chunks"
        return chunks.is_dir() and next(chunks.glob("*/*/*"), None) is not None

    async def open(self, indexed: Callable[[str], bool]) -> None:
        """List the files; remove those whose id the volumes already hold (a
        migration interrupted after its append, or a repair)."""
        await self.files.open()
        async for chunk_id in self.files.list_ids():
            if indexed(chunk_id):
                await self.files.delete(chunk_id)
            else:
                self.ids.add(chunk_id)

    async def close(self) -> None:
        await self.files.close()

    def __contains__(self, chunk_id: str) -> bool:
        return chunk_id in self.ids

    async def get(self, chunk_id: str) -> bytes:
        try:
            return await self.files.get(chunk_id)
        except ChunkMissing:
            self.ids.discard(chunk_id)
            raise

    async def intact(self, chunk_id: str) -> bool:
        """Whether the file still holds a frame that verifies (legacy files
        have no checksum of their own: the frame's BLAKE3 id is it)."""
        try:
            frame = await self.get(chunk_id)
            await asyncio.to_thread(verify_frame, frame, chunk_id)
        except (ChunkMissing, CorruptChunk, OSError):
            return False
        return True

    async def delete(self, chunk_id: str) -> bool:
        removed = await self.files.delete(chunk_id)
        self.ids.discard(chunk_id)
        return removed

    async def counts(self) -> tuple[int, int]:
        usage = await self.files.usage()
        return usage.chunk_count, usage.bytes_stored

    async def migrate(self, append: Callable[[str, bytes], Awaitable[None]],
                      progress: Progress | None = None) -> MigrateReport:
        """Append every verified legacy frame to the volumes, then remove its file."""
        _, total = await self.counts()
        moved = moved_bytes = corrupt = done = 0
        pending = sorted(self.ids, reverse=True)
        while pending:
            group, missing, size = await asyncio.to_thread(self._read_group, pending)
            self.ids.difference_update(missing)
            good = [(cid, frame) for cid, frame in group if frame is not None]
            # All appended and acknowledged (one group commit) before any removal.
            await asyncio.gather(*(append(cid, frame) for cid, frame in good))
            for cid, frame in good:
                await self.delete(cid)
                moved += 1
                moved_bytes += len(frame)
            corrupt += len(group) - len(good)
            done += size
            if progress is not None:
                progress(done, total)
        return MigrateReport(moved, moved_bytes, corrupt)

    def _read_group(self, pending: list[str]
                    ) -> tuple[list[tuple[str, bytes | None]], list[str], int]:
        """Take ids off ``pending`` and read them, verified (None: damaged),
        up to a group's count or bytes; also the ids whose file is gone, and
        the bytes read."""
        group: list[tuple[str, bytes | None]] = []
        missing: list[str] = []
        size = 0
        while pending and len(group) < _MIGRATE_BATCH and size < _MIGRATE_BATCH_BYTES:
            chunk_id = pending.pop()
            path = self.files.root / "chunks" / chunk_id[:2] / chunk_id[2:4] / chunk_id
            try:
                frame: bytes | None = path.read_bytes()
            except FileNotFoundError:
                missing.append(chunk_id)
                continue
            size += len(frame)
            try:
                verify_frame(frame, chunk_id)
            except CorruptChunk:
                frame = None
            group.append((chunk_id, frame))
        return group, missing, size
