"""The replication queue: durable intents to put a copy of a chunk on a
worker (hinted handoff, under-replicated writes, read repair, re-homing).

Queue rows are read by no memoized answer, so only completing a task (a new
copy: the replicas of every version using the chunk) invalidates anything.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from echofs.core.manifest import ReplicationTask
from echofs.core.vocabulary import ChunkState, ReplicationReason
from echofs.metadata.memoized import chunk_tags
from echofs.metadata.models import ReplicationTaskRow
from echofs.metadata.sql import Sql, lock_chunks, queue_copies
from echofs.metadata.transactions import NOTHING_READ_VISIBLE, Transactions, retried


@dataclass(frozen=True, slots=True)
class ChunkStanding:
    """What the replicator needs to know of a chunk before copying it."""

    state: ChunkState
    # Some version's manifest lists it: a committed upload needs its copies.
    referenced: bool
    # The last claim, keep-alive touch or commit of an upload using it.
    touched_at: float


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
    async def drop_orphaned_replication(self, task: ReplicationTask,
                                        untouched_before: float) -> bool:
        """Drop ``task`` if its chunk is an orphan's: no version references
        it and no upload touched it since ``untouched_before``. False (and
        nothing dropped) if the chunk is in use after all: committed, touched,
        or held by an upload's transaction right now."""
        def body(db: Sql) -> bool:
            if not lock_chunks(db, [task.chunk_id], skip_locked=True):
                return False
            return bool(db.rows(
                "DELETE FROM replication_tasks WHERE id = ? AND chunk_id IN ("
                "SELECT id FROM chunks WHERE id = ? AND touched_at < ? AND NOT EXISTS ("
                "SELECT 1 FROM version_chunks WHERE version_chunks.chunk_id = chunks.id) "
                "AND NOT EXISTS (SELECT 1 FROM upload_part_chunks "
                "WHERE upload_part_chunks.chunk_id = chunks.id)) "
                "RETURNING id", (task.task_id, task.chunk_id, untouched_before)))

        return await self._transact(body, invalidates=NOTHING_READ_VISIBLE, relaxed=True)

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

    async def chunk_standing(self, chunk_id: str) -> ChunkStanding | None:
        """The chunk's state, whether a version uses it and its last touch
        (None: no row, the collector removed it)."""
        rows = await self._read_sql(lambda db: db.rows(
            "SELECT state, touched_at, EXISTS (SELECT 1 FROM version_chunks "
            "WHERE version_chunks.chunk_id = chunks.id) OR EXISTS (SELECT 1 FROM "
            "upload_part_chunks WHERE upload_part_chunks.chunk_id = chunks.id) "
            "FROM chunks WHERE id = ?", (chunk_id,)))
        if not rows:
            return None
        state, touched_at, referenced = rows[0]
        return ChunkStanding(ChunkState(state), bool(referenced), float(touched_at))

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

    async def replication_breakdown(self) -> ReplicationBreakdown:
        """The queue by reason and by target worker, how much of it is due
        now and the most attempts any task has had (the replication stats)."""
        now = time.time()
        async with self._read() as session:
            by_reason = (await session.execute(
                select(ReplicationTaskRow.reason, func.count(ReplicationTaskRow.id))
                .group_by(ReplicationTaskRow.reason))).all()
            by_target = (await session.execute(
                select(ReplicationTaskRow.target_worker, func.count(ReplicationTaskRow.id))
                .group_by(ReplicationTaskRow.target_worker))).all()
            due, attempts = (await session.execute(
                select(func.count(ReplicationTaskRow.id).filter(
                    ReplicationTaskRow.next_attempt_at <= now),
                       func.max(ReplicationTaskRow.attempts)))).one()
        return ReplicationBreakdown({str(r): int(n) for r, n in by_reason},
                                    {str(w): int(n) for w, n in by_target},
                                    int(due or 0), int(attempts or 0))


@dataclass(frozen=True, slots=True)
class ReplicationBreakdown:
    by_reason: dict[str, int]
    by_target: dict[str, int]
    due_now: int
    max_attempts: int
