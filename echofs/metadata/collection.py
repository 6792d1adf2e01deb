"""Garbage collection's side of the chunks table: claiming chunks nothing
references and nobody touched within the grace period, and forgetting them
once their copies are gone.

Only unreferenced chunks are ever claimed, and no memoized answer (a file, a
version) mentions one: these writes invalidate nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, exists, func, select, update

from echofs.core.vocabulary import ChunkState
from echofs.metadata.models import (
    ChunkReplicaRow,
    ChunkRow,
    ReplicationTaskRow,
    UploadPartChunkRow,
    VersionChunkRow,
)
from echofs.metadata.sql import batches
from echofs.metadata.transactions import NOTHING_READ_VISIBLE, Transactions, retried


@dataclass(frozen=True, slots=True)
class Reclaimable:
    """Deleted data whose copies are still on the workers' disks."""

    chunks: int
    # Bytes on disk: each chunk's stored (compressed) size once per copy.
    stored_bytes: int
    # The oldest last touch among them: the collector may take the first of
    # them once the grace period after it has passed. None when nothing waits.
    oldest_touched_at: float | None


class Collection(Transactions):
    async def reclaimable(self) -> Reclaimable:
        """What the collector will remove: unreferenced chunks (claimed or
        still waiting out their grace period) and the bytes their copies hold."""
        # Referenced: by a version, or by a part an upload session holds.
        unreferenced = ~exists().where(VersionChunkRow.chunk_id == ChunkRow.id) & ~exists(
        ).where(UploadPartChunkRow.chunk_id == ChunkRow.id)
        copies = (select(func.count()).where(ChunkReplicaRow.chunk_id == ChunkRow.id)
                  .correlate(ChunkRow).scalar_subquery())
        async with self._read() as session:
            count, stored, oldest = (
                await session.execute(
                    select(func.count(ChunkRow.id),
                           func.coalesce(func.sum(ChunkRow.stored_size * copies), 0),
                           func.min(ChunkRow.touched_at))
                    .where(unreferenced)
                )
            ).one()
        return Reclaimable(int(count), int(stored), oldest if count else None)

    @retried
    async def claim_garbage(self, touched_before: float, limit: int = 1000) -> list[str]:
        """Mark unreferenced, untouched chunks as 'deleting' and return them,
        together with chunks a previous (interrupted) collection had claimed."""
        # Referenced: by a version, or by a part an upload session holds.
        unreferenced = ~exists().where(VersionChunkRow.chunk_id == ChunkRow.id) & ~exists(
        ).where(UploadPartChunkRow.chunk_id == ChunkRow.id)
        async with self._write(invalidates=NOTHING_READ_VISIBLE) as session:
            pending = list(
                (
                    await session.execute(
                        select(ChunkRow.id)
                        .where(ChunkRow.state == ChunkState.DELETING).limit(limit)
                    )
                ).scalars()
            )
            candidates = list(
                (
                    await session.execute(
                        select(ChunkRow.id)
                        .where(
                            ChunkRow.state == ChunkState.LIVE,
                            ChunkRow.touched_at < touched_before,
                            unreferenced,
                        )
                        .limit(max(0, limit - len(pending)))
                    )
                ).scalars()
            )
            claimed: list[str] = []
            # Rows an upload holds right now are in use: not garbage this pass.
            candidates = await self._lock_chunks(session, candidates, skip_locked=True)
            for batch in batches(candidates):
                result = await session.execute(
                    update(ChunkRow)
                    .where(
                        ChunkRow.id.in_(batch),
                        ChunkRow.state == ChunkState.LIVE,
                        ChunkRow.touched_at < touched_before,
                        unreferenced,
                    )
                    .values(state=ChunkState.DELETING)
                    .returning(ChunkRow.id)
                )
                claimed.extend(result.scalars())
        return pending + claimed

    @retried
    async def forget_chunks(self, chunk_ids: Sequence[str]) -> None:
        """Drop the rows of chunks whose copies the collector has deleted."""
        async with self._write(invalidates=NOTHING_READ_VISIBLE) as session:
            for batch in batches(await self._lock_chunks(session, chunk_ids)):
                await session.execute(
                    delete(ReplicationTaskRow).where(ReplicationTaskRow.chunk_id.in_(batch))
                )
                await session.execute(
                    delete(ChunkReplicaRow).where(ChunkReplicaRow.chunk_id.in_(batch))
                )
                await session.execute(
                    delete(ChunkRow).where(ChunkRow.id.in_(batch),
                                           ChunkRow.state == ChunkState.DELETING)
                )
