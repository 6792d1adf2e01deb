"""Chunks and their copies: claims before an upload writes, where copies live.

Chunk ids are made up (blake3 of a name); no worker or chunk bytes exist here.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select

from echofs.core.vocabulary import ReplicationReason
from echofs.metadata.models import ChunkRow
from echofs.metadata.repository import MetadataRepository, StoreTotals

from .conftest import ALL_BACKENDS, chunk, cid, future, scalar, upload

METADATA_BACKENDS = ALL_BACKENDS

# -- claim_chunks -------------------------------------------------------------

async def touched_at(repo: MetadataRepository, chunk_id: str) -> float:
    """When the store last saw the chunk in use, read from the engine's own
    record of it (a row's column, an item's attribute)."""
    if repo.engine is None:  # DynamoDB
        from echofs.metadata.dynamodb.base import CHUNKS, chunk_key

        item = await repo.db.get(CHUNKS, *chunk_key(chunk_id))  # type: ignore[attr-defined]
        assert item is not None
        return float(item["touched_at"])
    return float(await scalar(repo, select(ChunkRow.touched_at).where(ChunkRow.id == chunk_id)))


async def test_claim_chunks_creates_live_rows(repo: MetadataRepository) -> None:
    a, b = chunk("a", 10, stored_size=7, compressed=True), chunk("b", 20)
    assert await repo.chunk_state(a.chunk_id) is None

    claims = await repo.claim_chunks([a, b])

    assert set(claims) == {a.chunk_id, b.chunk_id}
    for c in (a, b):
        assert claims[c.chunk_id].chunk_id == c.chunk_id
        assert claims[c.chunk_id].state == "live"
        assert claims[c.chunk_id].replicas == ()
        assert await repo.chunk_state(c.chunk_id) == "live"
    assert await repo.totals() == StoreTotals(files=0, versions=0, chunks=2, stored_bytes=27)


async def test_claim_chunks_with_no_chunks(repo: MetadataRepository) -> None:
    assert await repo.claim_chunks([]) == {}
    assert (await repo.totals()).chunks == 0


async def test_claim_chunks_deduplicates_within_a_request(repo: MetadataRepository) -> None:
    a = chunk("a", 10)
    claims = await repo.claim_chunks([a, a, a])
    assert list(claims) == [a.chunk_id]
    assert (await repo.totals()).chunks == 1


async def test_claim_chunks_reports_existing_replicas(repo: MetadataRepository) -> None:
    known = chunk("known", replicas=("w2", "w1"))
    await upload(repo, chunks=[known])
    await repo.add_replicas(known.chunk_id, ["w3"])
    fresh = chunk("fresh")

    claims = await repo.claim_chunks([known, fresh])

    assert claims[known.chunk_id].state == "live"
    assert claims[known.chunk_id].replicas == ("w1", "w2", "w3")
    assert claims[fresh.chunk_id].replicas == ()
    # Claiming a known chunk does not duplicate its row.
    assert (await repo.totals()).chunks == 2


async def test_claim_chunks_touches_known_chunks(repo: MetadataRepository) -> None:
    a = chunk("a")
    await repo.claim_chunks([a])
    first = await touched_at(repo, a.chunk_id)
    await asyncio.sleep(0.02)
    middle = time.time()
    await asyncio.sleep(0.02)

    await repo.claim_chunks([a])

    touched = await touched_at(repo, a.chunk_id)
    assert first < middle < touched
    # ...so a collector whose grace period ends between the two claims leaves it alone.
    assert await repo.claim_garbage(middle) == []
    assert await repo.chunk_state(a.chunk_id) == "live"


async def test_claim_chunks_reports_a_collected_chunk(repo: MetadataRepository) -> None:
    a = chunk("a")
    await repo.claim_chunks([a])
    assert await repo.claim_garbage(future()) == [a.chunk_id]

    claims = await repo.claim_chunks([a])

    # A claimed chunk is not revived: the upload must write it anew after GC.
    assert claims[a.chunk_id].state == "deleting"
    assert await repo.chunk_state(a.chunk_id) == "deleting"


# -- replica_page -------------------------------------------------------------

async def test_replica_page_walks_every_live_replica_once(repo: MetadataRepository) -> None:
    chunks = [
        chunk("p0", 10, stored_size=4, replicas=("w1", "w2", "w3")),
        chunk("p1", 20, replicas=("w2",)),
        chunk("p2", 30, stored_size=11, replicas=("w1", "w3")),
        chunk("p3", 40, replicas=()),
    ]
    await upload(repo, chunks=chunks)
    await repo.add_replicas(chunks[3].chunk_id, ["w9"])
    # A chunk being collected is not scrubbed.
    doomed = chunk("doomed", 5)
    await repo.claim_chunks([doomed])
    await repo.add_replicas(doomed.chunk_id, ["w1"])
    assert await repo.claim_garbage(future()) == [doomed.chunk_id]

    expected = sorted(
        (c.chunk_id, w, c.stored_size) for c in chunks for w in (c.replicas or ("w9",))
    )
    for limit in (1, 2, 3, 100):
        seen: list[tuple[str, str, int]] = []
        cursor = None
        for _ in range(len(expected) + 2):
            page = await repo.replica_page(cursor, limit)
            assert len(page) <= limit
            if not page:
                break
            seen.extend(page)
            cursor = (page[-1][0], page[-1][1])
        assert seen == expected, f"limit={limit}"
    last = expected[-1]
    assert await repo.replica_page((last[0], last[1]), 10) == []


async def test_replica_page_empty(repo: MetadataRepository) -> None:
    assert await repo.replica_page(None, 10) == []


# -- recording copies -----------------------------------------------------------

async def test_add_replicas_records_each_copy_once(repo: MetadataRepository) -> None:
    a = chunk("a", replicas=("w1",))
    await upload(repo, chunks=[a])

    await repo.add_replicas(a.chunk_id, ["w3", "w2", "w3"])
    await repo.add_replicas(a.chunk_id, ["w1"])
    await repo.add_replicas(a.chunk_id, [])

    assert await repo.replicas(a.chunk_id) == ("w1", "w2", "w3")
    assert await repo.replicas_of([a.chunk_id, cid("nothing")]) == {
        a.chunk_id: ("w1", "w2", "w3")}


async def test_record_partial_write_records_the_copy_and_queues_the_rest(
    repo: MetadataRepository,
) -> None:
    a = chunk("a", replicas=())
    await repo.claim_chunks([a])

    await repo.record_partial_write(a.chunk_id, "w2", ["w1", "w3"],
                                    ReplicationReason.DEFERRED_COPY)
    # Recorded again (a retried call): nothing doubles.
    await repo.record_partial_write(a.chunk_id, "w2", ["w1", "w3"],
                                    ReplicationReason.DEFERRED_COPY)

    assert await repo.replicas(a.chunk_id) == ("w2",)
    due = await repo.due_replications()
    assert sorted((t.chunk_id, t.target_worker, t.reason) for t in due) == [
        (a.chunk_id, "w1", ReplicationReason.DEFERRED_COPY),
        (a.chunk_id, "w3", ReplicationReason.DEFERRED_COPY)]
    with pytest.raises(ValueError):
        await repo.record_partial_write(a.chunk_id, "w2", [], "no such reason")  # type: ignore[arg-type]


# -- what is stored where -------------------------------------------------------

async def test_chunk_state_and_known_chunks(repo: MetadataRepository) -> None:
    live, doomed = chunk("live"), chunk("doomed")
    await upload(repo, chunks=[live])
    await repo.claim_chunks([doomed])
    assert await repo.claim_garbage(future()) == [doomed.chunk_id]

    assert await repo.chunk_state(live.chunk_id) == "live"
    assert await repo.chunk_state(doomed.chunk_id) == "deleting"
    assert await repo.chunk_state(cid("unknown")) is None
    assert await repo.known_chunks([live.chunk_id, doomed.chunk_id, cid("unknown")]) == {
        live.chunk_id, doomed.chunk_id}
    assert await repo.known_chunks([]) == set()


async def test_chunks_on_worker_pages_live_chunks_with_all_their_replicas(
    repo: MetadataRepository,
) -> None:
    held = sorted([chunk(f"held-{i}", replicas=("w1", "w2")) for i in range(5)],
                  key=lambda c: c.chunk_id)
    elsewhere = chunk("elsewhere", replicas=("w2",))
    await upload(repo, chunks=[*held, elsewhere])
    doomed = chunk("doomed")
    await repo.claim_chunks([doomed])
    await repo.add_replicas(doomed.chunk_id, ["w1"])
    assert await repo.claim_garbage(future()) == [doomed.chunk_id]

    seen: list[tuple[str, tuple[str, ...]]] = []
    after = None
    while page := await repo.chunks_on_worker("w1", after, 2):
        assert len(page) <= 2
        seen.extend(page)
        after = page[-1][0]
    assert seen == [(c.chunk_id, ("w1", "w2")) for c in held]
    assert await repo.chunks_on_worker("w9", None, 10) == []


async def test_under_replicated_lists_committed_chunks_short_of_copies(
    repo: MetadataRepository,
) -> None:
    short = chunk("short", replicas=("w1",))
    full = chunk("full", replicas=("w1", "w2"))
    await upload(repo, chunks=[short, full])
    claimed_only = chunk("claimed only")
    await repo.claim_chunks([claimed_only])
    await repo.add_replicas(claimed_only.chunk_id, ["w1"])

    assert await repo.under_replicated(2) == [(short.chunk_id, ("w1",))]
    both = sorted([(short.chunk_id, ("w1",)), (full.chunk_id, ("w1", "w2"))])
    assert await repo.under_replicated(3) == both
    assert await repo.under_replicated(3, limit=1) == both[:1]
    await repo.add_replicas(short.chunk_id, ["w3"])
    assert await repo.under_replicated(2) == []


async def test_known_worker_ids_are_holders_and_targets(repo: MetadataRepository) -> None:
    assert await repo.known_worker_ids() == []
    a = chunk("a", replicas=("w2", "w1"))
    await upload(repo, chunks=[a])
    await repo.enqueue_replication(a.chunk_id, "w7", ReplicationReason.REHOME)

    assert await repo.known_worker_ids() == ["w1", "w2", "w7"]
