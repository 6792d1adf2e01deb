"""Chunks and their copies: the claims an upload makes before writing, the
touches that keep the collector away, and where copies live."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from sqlalchemy import and_, exists, func, or_, select

from echofs.core.manifest import NewChunk
from echofs.core.vocabulary import ChunkState, ReplicationReason
from echofs.metadata.memoized import chunk_tags
from echofs.metadata.models import (
    ChunkReplicaRow,
    ChunkRow,
    ReplicationTaskRow,
    UploadPartChunkRow,
    VersionChunkRow,
)
from echofs.metadata.records import ChunkClaim
from echofs.metadata.sql import Sql, batches, lock_chunks, queue_copies, replicas_of, touch_live
from echofs.metadata.transactions import NOTHING_READ_VISIBLE, Transactions, retried

_LIVE = ChunkState.LIVE.value


class Chunks(Transactions):
    # -- chunks an upload writes ---------------------------------------------------

    @retried
    async def claim_chunks(self, chunks: Sequence[NewChunk]) -> dict[str, ChunkClaim]:
        """Register chunks before their bytes go to workers.

        Creates missing rows and touches live ones, so the collector leaves
        them alone while the upload runs, and reports where copies already
        exist (deduplication).
        """
        now = time.time()
        # New rows and touch times: no memoized answer reads either.
        return await self._transact(lambda db: claim(db, chunks, now),
                                    invalidates=NOTHING_READ_VISIBLE, relaxed=True)

    @retried
    async def record_partial_write(self, chunk_id: str, stored_on: str, owed: Sequence[str],
                                   reason: ReplicationReason) -> None:
        """A chunk acknowledged with one copy: record it and, in the same
        transaction, the durable intents for the copies still owed."""
        reason = ReplicationReason(reason)  # refuse a free string before the database
        now = time.time()

        def body(db: Sql) -> None:
            db.run("INSERT INTO chunk_replicas (chunk_id, worker_id, stored_at) "
                   "VALUES (?, ?, ?) ON CONFLICT DO NOTHING", (chunk_id, stored_on, now))
            queue_copies(db, chunk_id, owed, reason, now)

        # Relaxed: the durable commit of the version that relies on it (the
        # write is acknowledged only then) makes it durable first.
        await self._transact(body, invalidates=chunk_tags([chunk_id]), relaxed=True)

    @retried
    async def touch_chunks(self, chunk_ids: Sequence[str]) -> None:
        """Tell the collector these chunks are in use (a long upload's)."""
        now = time.time()

        def body(db: Sql) -> None:
            touch_live(db, lock_chunks(db, chunk_ids), now)

        await self._transact(body, invalidates=NOTHING_READ_VISIBLE, relaxed=True)

    @retried
    async def add_replicas(self, chunk_id: str, worker_ids: Iterable[str]) -> None:
        rows = [
            {"chunk_id": chunk_id, "worker_id": w, "stored_at": time.time()} for w in worker_ids
        ]
        if not rows:
            return
        await self._transact(
            lambda db: db.run_many("INSERT INTO chunk_replicas (chunk_id, worker_id, stored_at) "
                                   "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                                   [(r["chunk_id"], r["worker_id"], r["stored_at"])
                                    for r in rows]),
            invalidates=chunk_tags([chunk_id]), relaxed=True)

    # -- what is stored where ----------------------------------------------------------

    async def chunk_state(self, chunk_id: str) -> ChunkState | None:
        async with self._read() as session:
            state = (
                await session.execute(select(ChunkRow.state).where(ChunkRow.id == chunk_id))
            ).scalar_one_or_none()
        return None if state is None else ChunkState(state)

    async def known_chunks(self, chunk_ids: Sequence[str]) -> set[str]:
        """Which of these ids the metadata store has a row for (any state)."""
        found: set[str] = set()
        async with self._read() as session:
            for batch in batches(list(chunk_ids)):
                found.update((await session.execute(
                    select(ChunkRow.id).where(ChunkRow.id.in_(batch)))).scalars())
        return found

    async def replicas_of(self, chunk_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Where each of these chunks has copies (chunks with none are absent)."""
        async with self._read() as session:
            found = await self._replicas_of(session, list(dict.fromkeys(chunk_ids)))
        return {chunk_id: tuple(workers) for chunk_id, workers in found.items()}

    async def replicas(self, chunk_id: str) -> tuple[str, ...]:
        async with self._read() as session:
            found = await self._replicas_of(session, [chunk_id])
        return tuple(found.get(chunk_id, ()))

    async def replica_page(
        self, after: tuple[str, str] | None, limit: int
    ) -> list[tuple[str, str, int]]:
        """(chunk id, worker id, stored size) of live chunks' replicas in key
        order after ``after``: the scrubber's cursor over everything stored."""
        query = (
            select(ChunkReplicaRow.chunk_id, ChunkReplicaRow.worker_id, ChunkRow.stored_size)
            .join(ChunkRow, ChunkRow.id == ChunkReplicaRow.chunk_id)
            .where(ChunkRow.state == ChunkState.LIVE)
            .order_by(ChunkReplicaRow.chunk_id, ChunkReplicaRow.worker_id)
            .limit(limit)
        )
        if after is not None:
            chunk_id, worker_id = after
            query = query.where(or_(
                ChunkReplicaRow.chunk_id > chunk_id,
                and_(ChunkReplicaRow.chunk_id == chunk_id, ChunkReplicaRow.worker_id > worker_id),
            ))
        async with self._read() as session:
            return [(c, w, int(n)) for c, w, n in (await session.execute(query)).all()]

    async def chunks_on_worker(
        self, worker_id: str, after: str | None, limit: int
    ) -> list[tuple[str, tuple[str, ...]]]:
        """Live chunks with a copy on ``worker_id`` (id order, after ``after``),
        each with all its replicas."""
        query = (
            select(ChunkReplicaRow.chunk_id)
            .join(ChunkRow, ChunkRow.id == ChunkReplicaRow.chunk_id)
            .where(ChunkReplicaRow.worker_id == worker_id, ChunkRow.state == ChunkState.LIVE)
            .order_by(ChunkReplicaRow.chunk_id).limit(limit)
        )
        if after is not None:
            query = query.where(ChunkReplicaRow.chunk_id > after)
        async with self._read() as session:
            ids = list((await session.execute(query)).scalars())
            replicas = await self._replicas_of(session, ids)
        return [(cid, tuple(replicas.get(cid, ()))) for cid in ids]

    async def under_replicated(self, replication_factor: int, limit: int = 500
                               ) -> list[tuple[str, tuple[str, ...]]]:
        """Committed chunks with fewer than ``replication_factor`` recorded
        copies (say, written while a worker was away), with their replicas."""
        copies = func.count(ChunkReplicaRow.worker_id)
        referenced = exists().where(VersionChunkRow.chunk_id == ChunkRow.id) | exists(
        ).where(UploadPartChunkRow.chunk_id == ChunkRow.id)
        query = (
            select(ChunkRow.id)
            .outerjoin(ChunkReplicaRow, ChunkReplicaRow.chunk_id == ChunkRow.id)
            .where(ChunkRow.state == ChunkState.LIVE, referenced)
            .group_by(ChunkRow.id)
            .having(copies < replication_factor)
            .order_by(ChunkRow.id)
            .limit(limit)
        )
        async with self._read() as session:
            ids = list((await session.execute(query)).scalars())
            replicas = await self._replicas_of(session, ids)
        return [(cid, tuple(replicas.get(cid, ()))) for cid in ids]

    async def known_worker_ids(self) -> list[str]:
        """Every worker the metadata mentions: holders of replicas and targets
        of pending replication."""
        async with self._read() as session:
            holders = set((await session.execute(
                select(ChunkReplicaRow.worker_id).distinct())).scalars())
            targets = set((await session.execute(
                select(ReplicationTaskRow.target_worker).distinct())).scalars())
        return sorted(holders | targets)


def claim(db: Sql, chunks: Sequence[NewChunk], now: float) -> dict[str, ChunkClaim]:
    """The body of ``Chunks.claim_chunks``, inside a transaction (group
    commits run it together with commits: see ``Commits.claim_and_commit``)."""
    ids = list(dict.fromkeys(c.chunk_id for c in chunks))
    if not ids:
        return {}
    # Sorted: concurrent inserts of the same ids wait in one order.
    rows = [(c.chunk_id, c.size, c.stored_size, c.compressed, _LIVE, now, now)
            for c in sorted({c.chunk_id: c for c in chunks}.values(), key=lambda c: c.chunk_id)]
    db.run_many("INSERT INTO chunks (id, raw_size, stored_size, compressed, state, "
                "touched_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING", rows)
    lock_chunks(db, ids)
    states = touch_live(db, ids, now)
    replicas = replicas_of(db, ids)
    return {
        cid: ChunkClaim(cid, ChunkState(states.get(cid, ChunkState.DELETING)),
                        tuple(replicas.get(cid, ())))
        for cid in ids
    }
