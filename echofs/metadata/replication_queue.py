"""The replication queue: durable intents to put a copy of a chunk on a
worker (hinted handoff, under-replicated writes, read repair, re-homing).

Queue rows are read by no memoized answer, so only completing a task (a new
copy: the replicas of every version using the chunk) invalidates anything.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from echofs.core.manifest import ReplicationTask
from echofs.core.vocabulary import ChunkState, ReplicationReason
from echofs.metadata.memoized import chunk_tags
from echofs.metadata.models import ReplicationTaskRow
from echofs.metadata.sql import Sql, queue_copies
from echofs.metadata.transactions import NOTHING_READ_VISIBLE, Transactions, retried


class ReplicationQueue(Transactions):
    # Provided by Chunks, next to this part in MetadataRepository.
    chunk_state: Callable[[str], Awaitable[ChunkState | None]]

    # The writes below run on the hot path (every chunk a write leaves short
    # of its copies, every copy the replicator makes), so they are plain SQL
    # (see sql), and relaxed: none needs its own wait for the disk. A task
    # or copy lost in a crash before the next durable commit is found again
    # (the version commit that relies on it makes it durable first; the
    # scrubber and the under-replication scan find the rest), and a
    # completion lost with its task row just runs the copy again.

    @retried
    async def enqueue_replication(self, chunk_id: str, target_worker: str,
                                  reason: ReplicationReason) -> None:
        """Queue a copy of ``chunk_id`` for ``target_worker``. A chunk the
        collector removed meanwhile (a scrub or read that raced it) is owed
        to nobody: nothing is queued."""
        reason = ReplicationReason(reason)  # refuse a free string before the database
        now = time.time()
        try:
            await self._transact(
                lambda db: queue_copies(db, chunk_id, [target_worker], reason, now),
                invalidates=NOTHING_READ_VISIBLE, relaxed=True)
        except (IntegrityError, sqlite3.IntegrityError):
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
        await self._transact(
            lambda db: db.run("DELETE FROM replication_tasks WHERE id = ?", (task.task_id,)),
            invalidates=NOTHING_READ_VISIBLE, relaxed=True)

    @retried
    async def complete_replication(self, task: ReplicationTask) -> None:
        def body(db: Sql) -> None:
            db.run("DELETE FROM replication_tasks WHERE id = ?", (task.task_id,))
            db.run("INSERT INTO chunk_replicas (chunk_id, worker_id, stored_at) "
                   "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                   (task.chunk_id, task.target_worker, time.time()))

        await self._transact(body, invalidates=chunk_tags([task.chunk_id]), relaxed=True)

    @retried
    async def retry_replication(self, task: ReplicationTask, delay: float) -> None:
        await self._transact(
            lambda db: db.run("UPDATE replication_tasks SET attempts = attempts + 1, "
                              "next_attempt_at = ? WHERE id = ?",
                              (time.time() + delay, task.task_id)),
            invalidates=NOTHING_READ_VISIBLE, relaxed=True)

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
