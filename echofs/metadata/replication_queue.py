"""The replication queue: durable intents to put a copy of a chunk on a
worker (hinted handoff, under-replicated writes, read repair, re-homing).

Queue rows are read by no memoized answer, so only completing a task (a new
copy: the replicas of every version using the chunk) invalidates anything.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from echofs.core.manifest import ReplicationTask
from echofs.core.vocabulary import ChunkState, ReplicationReason
from echofs.metadata.memoized import chunk_tags
from echofs.metadata.models import ChunkReplicaRow, ReplicationTaskRow
from echofs.metadata.transactions import NOTHING_READ_VISIBLE, Transactions, retried


class ReplicationQueue(Transactions):
    # Provided by Chunks, next to this part in MetadataRepository.
    chunk_state: Callable[[str], Awaitable[ChunkState | None]]

    @retried
    async def enqueue_replication(self, chunk_id: str, target_worker: str,
                                  reason: ReplicationReason) -> None:
        """Queue a copy of ``chunk_id`` for ``target_worker``. A chunk the
        collector removed meanwhile (a scrub or read that raced it) is owed
        to nobody: nothing is queued."""
        reason = ReplicationReason(reason)  # refuse a free string before the database
        now = time.time()
        try:
            async with self._write(invalidates=NOTHING_READ_VISIBLE) as session:
                await session.execute(
                    self._insert(ReplicationTaskRow)
                    .on_conflict_do_nothing()
                    .values(
                        chunk_id=chunk_id,
                        target_worker=target_worker,
                        reason=reason,
                        created_at=now,
                        next_attempt_at=now,
                        attempts=0,
                    )
                )
        except IntegrityError:
            if await self.chunk_state(chunk_id) is not None:
                raise

    @retried
    async def expedite_replication(self, target_worker: str) -> int:
        """Make every task for ``target_worker`` due now (it just came back)."""
        async with self._write(invalidates=NOTHING_READ_VISIBLE) as session:
            result = await session.execute(
                update(ReplicationTaskRow)
                .where(ReplicationTaskRow.target_worker == target_worker)
                .values(next_attempt_at=time.time())
            )
        return result.rowcount

    @retried
    async def drop_replication(self, task: ReplicationTask) -> None:
        async with self._write(invalidates=NOTHING_READ_VISIBLE) as session:
            await session.execute(delete(ReplicationTaskRow).where(
                ReplicationTaskRow.id == task.task_id))

    @retried
    async def complete_replication(self, task: ReplicationTask) -> None:
        async with self._write(invalidates=chunk_tags([task.chunk_id])) as session:
            await session.execute(
                delete(ReplicationTaskRow).where(ReplicationTaskRow.id == task.task_id)
            )
            await session.execute(
                self._insert(ChunkReplicaRow)
                .on_conflict_do_nothing()
                .values(chunk_id=task.chunk_id, worker_id=task.target_worker, stored_at=time.time())
            )

    @retried
    async def retry_replication(self, task: ReplicationTask, delay: float) -> None:
        async with self._write(invalidates=NOTHING_READ_VISIBLE) as session:
            await session.execute(
                update(ReplicationTaskRow)
                .where(ReplicationTaskRow.id == task.task_id)
                .values(
                    attempts=ReplicationTaskRow.attempts + 1, next_attempt_at=time.time() + delay
                )
            )

    async def due_replications(self, limit: int = 100) -> list[ReplicationTask]:
        async with self._read() as session:
            rows = (
                (
                    await session.execute(
                        select(ReplicationTaskRow)
                        .where(ReplicationTaskRow.next_attempt_at <= time.time())
                        .order_by(ReplicationTaskRow.next_attempt_at)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
        return [
            ReplicationTask(r.id, r.chunk_id, r.target_worker, ReplicationReason(r.reason),
                            r.created_at, r.attempts)
            for r in rows
        ]

    async def replication_backlog(self) -> tuple[int, float | None]:
        """Queue depth and the creation time of its oldest item."""
        async with self._read() as session:
            depth, oldest = (
                await session.execute(
                    select(
                        func.count(ReplicationTaskRow.id), func.min(ReplicationTaskRow.created_at)
                    )
                )
            ).one()
        return int(depth), oldest
