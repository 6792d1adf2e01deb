"""The replication queue: durable intents to copy a chunk to a worker."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from echofs.core.manifest import ReplicationTask
from echofs.core.vocabulary import ChunkState, ReplicationReason
from echofs.metadata.dynamodb.base import CHUNKS
from echofs.metadata.dynamodb.replication_queue import task_key
from echofs.metadata.dynamodb.repository import DynamoMetadataRepository
from echofs.metadata.models import ReplicationTaskRow
from echofs.metadata.repository import MetadataRepository

from .conftest import ALL_BACKENDS, chunk, cid, future, scalar, upload

METADATA_BACKENDS = ALL_BACKENDS


async def stored_schedule(repo: MetadataRepository, task: ReplicationTask
                          ) -> tuple[int, float] | None:
    """A task's attempts and next attempt as stored (its row, or its item)."""
    if isinstance(repo, DynamoMetadataRepository):
        item = await repo.db.get(CHUNKS, *task_key(task.chunk_id, task.target_worker))
        if item is None or item["task_id"] != task.task_id:
            return None
        return int(item["attempts"]), float(item["next_attempt_at"])
    attempts = await scalar(repo, select(ReplicationTaskRow.attempts)
                            .where(ReplicationTaskRow.id == task.task_id))
    due_at = await scalar(repo, select(ReplicationTaskRow.next_attempt_at)
                          .where(ReplicationTaskRow.id == task.task_id))
    return None if attempts is None else (attempts, due_at)

# -- replication queue --------------------------------------------------------

async def test_enqueue_replication_of_a_collected_chunk_queues_nothing(
    repo: MetadataRepository,
) -> None:
    """A scrub or read that raced the collector asks for a copy of a chunk
    whose row is gone: nothing is owed, nothing fails."""
    await repo.enqueue_replication(cid("collected meanwhile"), "w2",
                                   ReplicationReason.SCRUB_MISSING)
    depth, _ = await repo.replication_backlog()
    assert depth == 0


async def test_enqueue_replication_is_idempotent(repo: MetadataRepository) -> None:
    a = chunk("a")
    await upload(repo, chunks=[a])
    before = time.time()

    await repo.enqueue_replication(a.chunk_id, "w2", ReplicationReason.HINTED_HANDOFF)
    await repo.enqueue_replication(a.chunk_id, "w2", ReplicationReason.READ_REPAIR_MISSING)

    [task] = await repo.due_replications()
    assert task.chunk_id == a.chunk_id
    assert task.target_worker == "w2"
    assert task.reason is ReplicationReason.HINTED_HANDOFF
    assert task.attempts == 0
    assert before <= task.created_at <= time.time()
    assert await repo.replication_backlog() == (1, task.created_at)


async def test_replication_tasks_per_worker(repo: MetadataRepository) -> None:
    a, b = chunk("a"), chunk("b")
    await upload(repo, chunks=[a, b])
    await repo.enqueue_replication(a.chunk_id, "w2", ReplicationReason.REHOME)
    await asyncio.sleep(0.01)
    await repo.enqueue_replication(a.chunk_id, "w3", ReplicationReason.REHOME)
    await repo.enqueue_replication(b.chunk_id, "w2", ReplicationReason.REHOME)

    due = await repo.due_replications()
    assert sorted((t.chunk_id, t.target_worker) for t in due) == sorted(
        [(a.chunk_id, "w2"), (a.chunk_id, "w3"), (b.chunk_id, "w2")]
    )
    assert len({t.task_id for t in due}) == 3
    assert len(await repo.due_replications(limit=2)) == 2
    depth, oldest = await repo.replication_backlog()
    assert depth == 3
    assert oldest == min(t.created_at for t in due)
    first = next(t for t in due if (t.chunk_id, t.target_worker) == (a.chunk_id, "w2"))
    assert oldest == first.created_at
    assert all(oldest < t.created_at for t in due if t is not first)


async def test_retry_replication_postpones_and_counts(repo: MetadataRepository) -> None:
    a = chunk("a")
    await upload(repo, chunks=[a])
    await repo.enqueue_replication(a.chunk_id, "w2", ReplicationReason.HINTED_HANDOFF)
    [task] = await repo.due_replications()

    await repo.retry_replication(task, delay=60)

    assert await repo.due_replications() == []
    stored = await stored_schedule(repo, task)
    assert stored is not None
    attempts, due_at = stored
    assert attempts == 1
    assert due_at >= time.time() + 50
    # Still queued, still counted, still the oldest.
    assert await repo.replication_backlog() == (1, task.created_at)

    await repo.retry_replication(task, delay=0)
    [again] = await repo.due_replications()
    assert again.task_id == task.task_id
    assert again.attempts == 2
    assert again.created_at == task.created_at


async def test_complete_replication(repo: MetadataRepository) -> None:
    a = chunk("a", replicas=("w1",))
    await upload(repo, chunks=[a])
    await repo.enqueue_replication(a.chunk_id, "w2", ReplicationReason.UNDER_REPLICATED)
    [task] = await repo.due_replications()

    await repo.complete_replication(task)

    assert await repo.due_replications() == []
    assert await repo.replication_backlog() == (0, None)
    assert await repo.replicas(a.chunk_id) == ("w1", "w2")
    # Completing twice (a retried call) changes nothing.
    await repo.complete_replication(task)
    assert await repo.replicas(a.chunk_id) == ("w1", "w2")


async def test_replication_backlog_empty(repo: MetadataRepository) -> None:
    assert await repo.replication_backlog() == (0, None)


# -- copies owed to chunks of uploads that never committed ---------------------------

async def test_chunk_standing_tells_committed_from_claimed_only(
    repo: MetadataRepository,
) -> None:
    committed, claimed = chunk("committed"), chunk("claimed only")
    before = time.time()
    await upload(repo, chunks=[committed])
    await repo.claim_chunks([claimed])

    kept = await repo.chunk_standing(committed.chunk_id)
    orphan = await repo.chunk_standing(claimed.chunk_id)
    assert kept is not None and orphan is not None
    assert (kept.state, kept.referenced) == (ChunkState.LIVE, True)
    assert (orphan.state, orphan.referenced) == (ChunkState.LIVE, False)
    assert before <= orphan.touched_at <= time.time()
    assert await repo.chunk_standing(cid("never claimed")) is None


async def test_drop_orphaned_replication_only_drops_untouched_unreferenced_chunks(
    repo: MetadataRepository,
) -> None:
    committed, claimed = chunk("committed"), chunk("claimed only")
    await upload(repo, chunks=[committed])
    await repo.claim_chunks([claimed])
    for c in (committed, claimed):
        await repo.enqueue_replication(c.chunk_id, "w2", ReplicationReason.UNDER_REPLICATED)
    tasks = {t.chunk_id: t for t in await repo.due_replications()}

    # Touched after the cut-off: its upload may still be running.
    assert not await repo.drop_orphaned_replication(tasks[claimed.chunk_id], time.time() - 60)
    # A version uses it, however old its touch.
    assert not await repo.drop_orphaned_replication(tasks[committed.chunk_id], future())
    assert await repo.replication_backlog() == (2, min(t.created_at for t in tasks.values()))

    assert await repo.drop_orphaned_replication(tasks[claimed.chunk_id], future())
    [left] = await repo.due_replications()
    assert left.chunk_id == committed.chunk_id


async def test_replication_breakdown_by_reason_target_and_due(repo: MetadataRepository) -> None:
    empty = await repo.replication_breakdown()
    assert (empty.by_reason, empty.by_target, empty.due_now, empty.max_attempts) == (
        {}, {}, 0, 0)
    a, b = chunk("a"), chunk("b")
    await upload(repo, chunks=[a, b])
    await repo.enqueue_replication(a.chunk_id, "w2", ReplicationReason.HINTED_HANDOFF)
    await repo.enqueue_replication(a.chunk_id, "w3", ReplicationReason.REHOME)
    await repo.enqueue_replication(b.chunk_id, "w2", ReplicationReason.HINTED_HANDOFF)
    [later, *_] = [t for t in await repo.due_replications() if t.target_worker == "w3"]
    await repo.retry_replication(later, 3600.0)  # not due for an hour, one attempt made
    found = await repo.replication_breakdown()
    assert found.by_reason == {ReplicationReason.HINTED_HANDOFF.value: 2,
                               ReplicationReason.REHOME.value: 1}
    assert found.by_target == {"w2": 2, "w3": 1}
    assert found.due_now == 2 and found.max_attempts == 1
