"""Garbage collection's claims on unreferenced, untouched chunks."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, select

from echofs.core.errors import Conflict, NotFound
from echofs.core.vocabulary import ReplicationReason
from echofs.metadata.dynamodb.base import CHUNKS, chunk_key
from echofs.metadata.dynamodb.chunks import worker_key
from echofs.metadata.dynamodb.repository import DynamoMetadataRepository
from echofs.metadata.models import ChunkReplicaRow
from echofs.metadata.repository import MetadataRepository

from .conftest import ALL_BACKENDS, chunk, cid, future, scalar, upload

METADATA_BACKENDS = ALL_BACKENDS


async def stored_copies(repo: MetadataRepository, chunk_id: str, workers: list[str]) -> int:
    """How many records of copies of ``chunk_id`` (on any of ``workers``)
    the store still keeps: rows, or map entries and per-worker items."""
    if isinstance(repo, DynamoMetadataRepository):
        item = await repo.db.get(CHUNKS, *chunk_key(chunk_id))
        in_map = len((item or {}).get("replicas") or {})
        items = [await repo.db.get(CHUNKS, *worker_key(w, chunk_id)) for w in workers]
        return in_map + sum(i is not None for i in items)
    return int(await scalar(repo, select(func.count()).select_from(ChunkReplicaRow)
                            .where(ChunkReplicaRow.chunk_id == chunk_id)))

# -- claim_garbage ------------------------------------------------------------

async def test_claim_garbage_takes_only_unreferenced_untouched_chunks(
    repo: MetadataRepository,
) -> None:
    before = time.time()
    await asyncio.sleep(0.01)
    orphan, used = chunk("orphan"), chunk("used")
    await repo.claim_chunks([orphan])
    await upload(repo, "alice", "f", [used])

    # Both were touched after the cutoff: nothing is old enough.
    assert await repo.claim_garbage(before) == []
    assert await repo.chunk_state(orphan.chunk_id) == "live"

    # With the cutoff in the future only the unreferenced chunk is garbage.
    assert await repo.claim_garbage(future()) == [orphan.chunk_id]
    assert await repo.chunk_state(orphan.chunk_id) == "deleting"
    assert await repo.chunk_state(used.chunk_id) == "live"


async def test_referenced_chunk_is_never_claimed(repo: MetadataRepository) -> None:
    used = chunk("used")
    record, _ = await upload(repo, "alice", "f", [used])
    # Still referenced by version 1 after version 2 replaced it.
    await upload(repo, "alice", "f", [chunk("other")])
    # And by another file.
    await upload(repo, "bob", "g", [used])

    for _ in range(2):
        assert used.chunk_id not in await repo.claim_garbage(future())
    assert await repo.chunk_state(used.chunk_id) == "live"

    await repo.delete_file(record.file_id)
    # Alice's second version's chunk is garbage now; bob's file still holds `used`.
    assert await repo.claim_garbage(future()) == [cid("other")]
    assert await repo.chunk_state(used.chunk_id) == "live"


async def test_chunk_of_deleted_file_becomes_claimable(repo: MetadataRepository) -> None:
    a, b = chunk("a"), chunk("b")
    record, _ = await upload(repo, "alice", "f", [a, b])
    assert await repo.claim_garbage(future()) == []

    await repo.delete_file(record.file_id)

    assert sorted(await repo.claim_garbage(future())) == sorted([a.chunk_id, b.chunk_id])
    assert await repo.chunk_state(a.chunk_id) == "deleting"
    assert await repo.chunk_state(b.chunk_id) == "deleting"


async def test_chunk_of_deleted_version_becomes_claimable(repo: MetadataRepository) -> None:
    shared, only_v1 = chunk("shared"), chunk("only-v1")
    record, _ = await upload(repo, "alice", "f", [shared, only_v1])
    await upload(repo, "alice", "f", [shared])

    await repo.delete_file(record.file_id, version=1)

    assert await repo.claim_garbage(future()) == [only_v1.chunk_id]
    assert await repo.chunk_state(shared.chunk_id) == "live"


async def test_commit_touches_its_chunks(repo: MetadataRepository) -> None:
    a = chunk("a")
    await repo.claim_chunks([a])
    await asyncio.sleep(0.02)
    middle = time.time()
    await asyncio.sleep(0.02)
    record, _ = await upload(repo, "alice", "f", [a], claim=False)
    await repo.delete_file(record.file_id)

    # Touched by the commit, after the cutoff: within the grace period.
    assert await repo.claim_garbage(middle) == []
    assert await repo.claim_garbage(future()) == [a.chunk_id]


async def test_commit_using_a_claimed_chunk_raises_conflict(repo: MetadataRepository) -> None:
    record, _ = await upload(repo, "alice", "f", [chunk("v1")])
    doomed = chunk("doomed")
    await repo.claim_chunks([doomed])
    assert await repo.claim_garbage(future()) == [doomed.chunk_id]
    good = chunk("good")
    await repo.claim_chunks([good])

    with pytest.raises(Conflict) as raised:
        await upload(repo, "alice", "f", [good, doomed], claim=False)
    assert raised.value.code == "chunk_collected"
    assert raised.value.status == 409

    # Nothing of the failed commit is visible.
    assert (await repo.get_file(record.file_id)).current_version == 1
    assert [v.version for v in await repo.list_versions(record.file_id)] == [1]
    assert await repo.chunk_state(doomed.chunk_id) == "deleting"
    with pytest.raises(Conflict):
        await upload(repo, "alice", "new-file", [doomed], claim=False)
    with pytest.raises(NotFound):
        await repo.find_file("alice", "new-file")


async def test_claimed_chunks_are_returned_again_until_forgotten(
    repo: MetadataRepository,
) -> None:
    a = chunk("a")
    await repo.claim_chunks([a])
    assert await repo.claim_garbage(future()) == [a.chunk_id]

    # The collector died before forgetting: the next pass resumes the claim,
    # whatever its cutoff.
    assert await repo.claim_garbage(future()) == [a.chunk_id]
    assert await repo.claim_garbage(0.0) == [a.chunk_id]

    await repo.forget_chunks([a.chunk_id])
    assert await repo.claim_garbage(future()) == []


async def test_claim_garbage_respects_limit_across_passes(repo: MetadataRepository) -> None:
    orphans = [chunk(f"orphan-{i}") for i in range(5)]
    await repo.claim_chunks(orphans)

    collected: list[str] = []
    for _ in range(10):
        claimed = await repo.claim_garbage(future(), limit=2)
        assert len(claimed) <= 2
        if not claimed:
            break
        collected.extend(claimed)
        await repo.forget_chunks(claimed)

    assert sorted(collected) == sorted(c.chunk_id for c in orphans)
    assert (await repo.totals()).chunks == 0


# -- forget_chunks ------------------------------------------------------------

async def test_forget_chunks_removes_rows_and_replicas(repo: MetadataRepository) -> None:
    a, keep = chunk("a", replicas=("w1", "w2")), chunk("keep", replicas=("w1",))
    record, _ = await upload(repo, "alice", "f", [a])
    await upload(repo, "alice", "g", [keep])
    await repo.enqueue_replication(a.chunk_id, "w3", ReplicationReason.UNDER_REPLICATED)
    await repo.delete_file(record.file_id)
    assert await repo.claim_garbage(future()) == [a.chunk_id]

    await repo.forget_chunks([a.chunk_id])

    assert await repo.chunk_state(a.chunk_id) is None
    assert await repo.replicas(a.chunk_id) == ()
    assert await stored_copies(repo, a.chunk_id, ["w1", "w2", "w3"]) == 0
    assert await repo.due_replications() == []
    assert await repo.replication_backlog() == (0, None)
    # Other chunks are untouched.
    assert await repo.chunk_state(keep.chunk_id) == "live"
    assert await repo.replicas(keep.chunk_id) == ("w1",)
    assert (await repo.totals()).chunks == 1
    # Nothing is left to collect.
    assert await repo.claim_garbage(future()) == []


async def test_forget_chunks_with_no_chunks(repo: MetadataRepository) -> None:
    await repo.claim_chunks([chunk("a")])
    await repo.forget_chunks([])
    assert await repo.chunk_state(cid("a")) == "live"


# -- reclaimable ----------------------------------------------------------------


async def test_reclaimable_counts_deleted_chunks_copies_until_collected(
    repo: MetadataRepository,
) -> None:
    assert (await repo.reclaimable()).chunks == 0
    assert (await repo.reclaimable()).oldest_touched_at is None
    kept = chunk("kept", 100, replicas=("w1", "w2"))
    gone = chunk("gone", 300, stored_size=200, replicas=("w1", "w2", "w3"))
    await upload(repo, "alice", "keep", [kept])
    before = time.time()
    record, _ = await upload(repo, "alice", "drop", [gone])
    assert (await repo.reclaimable()).stored_bytes == 0

    await repo.delete_file(record.file_id)
    waiting = await repo.reclaimable()
    # Stored (compressed) size once per copy; the kept file's chunk is not counted.
    assert (waiting.chunks, waiting.stored_bytes) == (1, 3 * 200)
    assert waiting.oldest_touched_at is not None
    assert before - 1 <= waiting.oldest_touched_at <= time.time()

    # Claimed by a collection that has not deleted the copies yet: still there.
    assert await repo.claim_garbage(future()) == [gone.chunk_id]
    assert (await repo.reclaimable()).stored_bytes == 600
    await repo.forget_chunks([gone.chunk_id])
    assert (await repo.reclaimable()).stored_bytes == 0
