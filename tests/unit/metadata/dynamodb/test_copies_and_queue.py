"""DynamoDB's own rules for copies, the replication queue and the
collector's claims (against moto in server mode): what the index suggests is
always confirmed on the chunk's item, a task is known by its id, and a crash
between two writes leaves an entry too many, never a copy or a chunk lost.

Chunk items are written here as a claim writes them, so these run on this
part alone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from echofs.core.manifest import ReplicationTask
from echofs.core.vocabulary import ReplicationReason
from echofs.metadata import backends
from echofs.metadata.dynamodb.base import CHUNKS, GC, LIVE, chunk_key, gc_sort_key
from echofs.metadata.dynamodb.chunks import copy_item
from echofs.metadata.dynamodb.repository import DynamoMetadataRepository

from ..conftest import cid, future


@pytest.fixture
async def dynamo(fresh_dynamodb_url: str) -> AsyncIterator[DynamoMetadataRepository]:
    await backends.prepare(fresh_dynamodb_url, migrate=True)
    repository = backends.open_metadata(fresh_dynamodb_url)
    assert isinstance(repository, DynamoMetadataRepository)
    try:
        yield repository
    finally:
        await repository.close()


async def put_chunk(repo: DynamoMetadataRepository, chunk_id: str, *, refs: int = 0,
                    stored_size: int = 10, touched_at: float | None = None,
                    replicas: dict[str, float] | None = None) -> None:
    """A chunk item as a claim (refs 0) or a commit (refs > 0) leaves it."""
    now = time.time() if touched_at is None else touched_at
    pk, sk = chunk_key(chunk_id)
    item: dict[str, Any] = {
        "pk": pk, "sk": sk, "chunk_id": chunk_id, "raw_size": stored_size,
        "stored_size": stored_size, "compressed": False, "state": LIVE, "touched_at": now,
        "created_at": now, "refs": refs, "replicas": replicas or {}}
    if refs == 0:
        item.update(g1pk=GC, g1sk=gc_sort_key(now, chunk_id))
    await repo.db.write_many(CHUNKS, puts=[item])


async def test_replica_page_walks_every_index_partition_in_order(
        dynamo: DynamoMetadataRepository) -> None:
    # Ids starting with many different hex digits: the page crosses partitions.
    ids = sorted(cid(f"spread-{i}") for i in range(40))
    assert len({c[0] for c in ids}) > 8
    for n, chunk_id in enumerate(ids):
        await put_chunk(dynamo, chunk_id, refs=1, stored_size=n + 1)
        await dynamo.add_replicas(chunk_id, ["w1", "w2"] if n % 2 else ["w3"])
    expected = [(c, w, n + 1) for n, c in enumerate(ids)
                for w in (["w1", "w2"] if n % 2 else ["w3"])]

    for limit in (1, 7, 100):
        seen: list[tuple[str, str, int]] = []
        cursor = None
        while page := await dynamo.replica_page(cursor, limit):
            # Short only at the end: the scrubber's sign of a finished cycle.
            assert len(page) == limit or len(seen) + len(page) == len(expected)
            seen.extend(page)
            cursor = page[-1][:2]
        assert seen == expected, f"limit={limit}"


async def test_a_copy_the_chunk_does_not_confirm_is_not_listed(
        dynamo: DynamoMetadataRepository) -> None:
    """A ``W#`` item left by a crash (or by a chunk forgotten and claimed
    anew) is an index entry too many: no reader takes it for a copy."""
    kept, stray = cid("kept"), cid("stray")
    await put_chunk(dynamo, kept, refs=1)
    await dynamo.add_replicas(kept, ["w1"])
    await put_chunk(dynamo, stray, refs=1)
    await dynamo.db.write_many(CHUNKS, puts=[copy_item(stray, "w1", time.time()),
                                             copy_item(cid("gone"), "w1", time.time())])

    assert await dynamo.replica_page(None, 10) == [(kept, "w1", 10)]
    assert await dynamo.chunks_on_worker("w1", None, 10) == [(kept, ("w1",))]
    assert await dynamo.replicas(stray) == ()


async def test_copies_of_a_forgotten_chunk_are_not_recorded(
        dynamo: DynamoMetadataRepository) -> None:
    await dynamo.add_replicas(cid("never claimed"), ["w1"])
    assert await dynamo.replica_page(None, 10) == []
    assert await dynamo.chunks_on_worker("w1", None, 10) == []
    assert await dynamo.known_worker_ids() == []


async def test_chunks_on_worker_pages_past_unconfirmed_entries(
        dynamo: DynamoMetadataRepository) -> None:
    ids = sorted(cid(f"held-{i}") for i in range(12))
    for chunk_id in ids:
        await put_chunk(dynamo, chunk_id, refs=1)
    # Every other one only has a stray index entry on w1.
    for n, chunk_id in enumerate(ids):
        if n % 2:
            await dynamo.db.write_many(CHUNKS, puts=[copy_item(chunk_id, "w1", time.time())])
        else:
            await dynamo.add_replicas(chunk_id, ["w1", "w2"])
    held = [c for n, c in enumerate(ids) if n % 2 == 0]

    seen: list[str] = []
    after = None
    while page := await dynamo.chunks_on_worker("w1", after, 2):
        assert all(replicas == ("w1", "w2") for _, replicas in page)
        seen.extend(c for c, _ in page)
        after = page[-1][0]
    assert seen == held


async def test_known_worker_ids_names_holders_and_targets_only(
        dynamo: DynamoMetadataRepository) -> None:
    a = cid("a")
    await put_chunk(dynamo, a, refs=1)
    await dynamo.add_replicas(a, ["w1", "w2"])
    await dynamo.enqueue_replication(a, "w9", ReplicationReason.REHOME)
    assert await dynamo.known_worker_ids() == ["w1", "w2", "w9"]

    # A worker whose copies are all forgotten is no longer mentioned.
    await dynamo.claim_garbage(future())  # referenced: nothing claimed
    b = cid("b")
    await put_chunk(dynamo, b)
    await dynamo.add_replicas(b, ["w3"])
    assert "w3" in await dynamo.known_worker_ids()
    assert await dynamo.claim_garbage(future()) == [b]
    await dynamo.forget_chunks([b])
    assert await dynamo.known_worker_ids() == ["w1", "w2", "w9"]


async def test_a_stale_task_answer_leaves_a_newer_task_alone(
        dynamo: DynamoMetadataRepository) -> None:
    """Completing, retrying or dropping a task is conditional on its id: the
    late answer of a task already done does not touch the one queued since
    for the same chunk and worker."""
    a = cid("a")
    await put_chunk(dynamo, a, refs=1, replicas={"w1": time.time()})
    await dynamo.enqueue_replication(a, "w2", ReplicationReason.SCRUB_MISSING)
    [old] = await dynamo.due_replications()
    await dynamo.drop_replication(old)
    await dynamo.enqueue_replication(a, "w2", ReplicationReason.SCRUB_CORRUPT)
    [new] = await dynamo.due_replications()
    assert new.task_id != old.task_id

    await dynamo.retry_replication(old, 3600)
    await dynamo.drop_replication(old)
    assert not await dynamo.drop_orphaned_replication(old, future())
    assert await dynamo.due_replications() == [new]
    await dynamo.complete_replication(old)  # the copy is recorded; the new task stays
    assert await dynamo.replicas(a) == ("w1", "w2")
    assert await dynamo.due_replications() == [new]


async def test_expedite_makes_only_that_workers_tasks_due(
        dynamo: DynamoMetadataRepository) -> None:
    a, b = cid("a"), cid("b")
    for chunk_id in (a, b):
        await put_chunk(dynamo, chunk_id, refs=1)
        for target in ("w2", "w3"):
            await dynamo.enqueue_replication(chunk_id, target, ReplicationReason.HINTED_HANDOFF)
    for task in await dynamo.due_replications():
        await dynamo.retry_replication(task, 3600)
    assert await dynamo.due_replications() == []

    assert await dynamo.expedite_replication("w2") == 2
    due = await dynamo.due_replications()
    assert sorted((t.chunk_id, t.target_worker, t.attempts) for t in due) == sorted([
        (a, "w2", 1), (b, "w2", 1)])
    assert (await dynamo.replication_breakdown()).due_now == 2


async def test_due_replications_honours_limit_and_order(
        dynamo: DynamoMetadataRepository) -> None:
    ids = [cid(f"q{i}") for i in range(5)]
    for chunk_id in ids:
        await put_chunk(dynamo, chunk_id, refs=1)
        await dynamo.enqueue_replication(chunk_id, "w2", ReplicationReason.REHOME)
    # The first one retried now falls due last.
    first = next(t for t in await dynamo.due_replications() if t.chunk_id == ids[0])
    await dynamo.retry_replication(first, 0)
    due = await dynamo.due_replications(limit=10)
    assert [t.chunk_id for t in due][-1] == ids[0]
    assert len(await dynamo.due_replications(limit=3)) == 3


async def test_claim_garbage_leaves_a_chunk_referenced_after_it_was_listed(
        dynamo: DynamoMetadataRepository) -> None:
    """The collector's index may still list a chunk an upload has just
    referenced; the claim's condition on the chunk's own item refuses it."""
    a = cid("a")
    await put_chunk(dynamo, a, touched_at=time.time() - 100)
    listed = [item async for item in dynamo._listed(GC)]
    assert [item["pk"] for item in listed] == [chunk_key(a)[0]]
    assert await dynamo.add_refs([a], time.time()) == set()
    assert not await dynamo._claim(a, future())
    assert await dynamo.claim_garbage(future()) == []
    assert await dynamo.chunk_state(a) == "live"


async def test_a_resumed_claim_is_read_again_before_it_is_returned(
        dynamo: DynamoMetadataRepository) -> None:
    """A chunk forgotten and claimed anew by an upload is live again: even if
    the index still listed it as being deleted, its copies are not handed to
    the collector."""
    a = cid("a")
    await put_chunk(dynamo, a)
    assert await dynamo.claim_garbage(future()) == [a]
    await dynamo.forget_chunks([a])
    # An index lagging behind: the new live item still carries DEL.
    await put_chunk(dynamo, a, refs=1)
    pk, sk = chunk_key(a)
    await dynamo.db.call(
        "update_item", TableName=dynamo.db.table(CHUNKS),
        Key={"pk": {"S": pk}, "sk": {"S": sk}}, UpdateExpression="SET g1pk = :d, g1sk = :id",
        ExpressionAttributeValues={":d": {"S": "DEL"}, ":id": {"S": a}})
    assert await dynamo.claim_garbage(future()) == []


async def test_forget_chunks_removes_tasks_and_copy_entries(
        dynamo: DynamoMetadataRepository) -> None:
    a = cid("a")
    await put_chunk(dynamo, a)
    await dynamo.add_replicas(a, ["w1", "w2"])
    await dynamo.enqueue_replication(a, "w3", ReplicationReason.UNDER_REPLICATED)
    assert await dynamo.claim_garbage(future()) == [a]

    await dynamo.forget_chunks([a, a])

    left = [item async for item in dynamo.db.query(
        CHUNKS, KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": chunk_key(a)[0]}})]
    assert left == []
    for worker in ("w1", "w2"):
        assert await dynamo.db.get(CHUNKS, f"W#{worker}", a) is None
    assert await dynamo.replication_backlog() == (0, None)


async def test_under_replicated_lists_only_referenced_live_chunks_short_of_copies(
        dynamo: DynamoMetadataRepository) -> None:
    short, full, unused = cid("short"), cid("full"), cid("unused")
    await put_chunk(dynamo, short, refs=2, replicas={"w1": 1.0})
    await put_chunk(dynamo, full, refs=1, replicas={"w1": 1.0, "w2": 1.0})
    await put_chunk(dynamo, unused, replicas={"w1": 1.0})
    assert await dynamo.under_replicated(2) == [(short, ("w1",))]
    assert await dynamo.under_replicated(3) == sorted([(short, ("w1",)),
                                                       (full, ("w1", "w2"))])
    assert await dynamo.under_replicated(3, limit=1) == sorted(
        [(short, ("w1",)), (full, ("w1", "w2"))])[:1]


def test_task_record_round_trip() -> None:
    from echofs.metadata.dynamodb.replication_queue import task_item, task_record

    item = task_item("c", "w", ReplicationReason.REHOME, 12.5)
    task = task_record(item)
    assert task == ReplicationTask(item["task_id"], "c", "w", ReplicationReason.REHOME, 12.5, 0)


async def test_collector_and_references_racing_never_both_win(
        dynamo: DynamoMetadataRepository) -> None:
    """Many chunks, the collector claiming while uploads take references on
    them: each chunk ends either claimed (and the upload told it is not
    live) or referenced and live, never referenced and claimed."""
    ids = [cid(f"race-{i}") for i in range(40)]
    for chunk_id in ids:
        await put_chunk(dynamo, chunk_id, touched_at=time.time() - 100)
    cut = time.time() - 50  # the references' touches make a chunk too young

    async def references() -> set[str]:
        refused: set[str] = set()
        for chunk_id in ids:
            refused |= await dynamo.add_refs([chunk_id], time.time())
        return refused

    claimed, refused = await asyncio.gather(dynamo.claim_garbage(cut, limit=1000),
                                            references())

    assert set(claimed) == refused
    for chunk_id in ids:
        item = await dynamo.db.get(CHUNKS, *chunk_key(chunk_id))
        assert item is not None
        if chunk_id in refused:
            assert (item["state"], int(item["refs"])) == ("deleting", 0)
        else:
            assert (item["state"], int(item["refs"])) == ("live", 1)


async def test_pages_larger_than_one_batch_read(dynamo: DynamoMetadataRepository) -> None:
    """Pages over 100 copies confirm them in several batched reads (100 keys
    a request) and still come out whole and in order."""
    ids = sorted(cid(f"many-{i}") for i in range(120))
    await dynamo.db.write_many(CHUNKS, puts=[
        {"pk": chunk_key(c)[0], "sk": "CHUNK", "chunk_id": c, "stored_size": 7,
         "state": LIVE, "touched_at": 1.0, "created_at": 1.0, "refs": 1, "replicas": {}}
        for c in ids])
    await dynamo.record_copies([(c, w) for c in ids for w in ("w1", "w2")], time.time())
    expected = [(c, w, 7) for c in ids for w in ("w1", "w2")]

    assert await dynamo.replica_page(None, 1000) == expected
    first = await dynamo.replica_page(None, 150)
    assert first == expected[:150]
    assert await dynamo.replica_page(first[-1][:2], 150) == expected[150:]
    on_w2 = await dynamo.chunks_on_worker("w2", None, 1000)
    assert on_w2 == [(c, ("w1", "w2")) for c in ids]
    assert await dynamo.chunks_on_worker("w2", ids[9], 105) == on_w2[10:115]
